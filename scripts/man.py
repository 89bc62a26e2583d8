#!/usr/bin/env python3
"""man.py - writes a man page (roff, man macros) from its one source,
docs/man/NAME.N.md, at build time (CMakeLists.txt: the `man` target).

The source is a small, fixed subset of Markdown that reads well as it is on
a forge and converts without pandoc or ronn (which Debian 12 does not ship
in a usable version for this):

    # errgate-serve(1) -- run the gateway        title: name, section, summary
    ## SECTION                                   a section (.SH)
    a paragraph, lines joined                    (.PP)
    * `--config` *FILE*:                         a tagged item (.TP), its text
      text indented by two spaces                on the indented lines after it
    ```                                          a literal block (.nf)
    `code` and *word*                            bold and italic
    errgate-serve(1)                             a page reference, set in bold

Anything else is an error: a page that would render wrong fails the build.
Usage: man.py SOURCE.md OUTPUT VERSION
"""
import re
import sys


def escape(text):
    """Roff's special characters in running text."""
    return text.replace("\\", "\\e")


def inline(text):
    """`code` -> bold (hyphens as minus signs, so options copy-paste),
    *word* -> italic, name(N) -> bold name."""
    out, pos = [], 0
    for m in re.finditer(r"`([^`]+)`|\*([^*\s][^*]*)\*|\b([a-z][a-z0-9._-]*)\(([1-8])\)", text):
        out.append(escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + escape(m.group(1)).replace("-", "\\-") + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fI" + escape(m.group(2)) + "\\fR")
        else:
            out.append("\\fB" + escape(m.group(3)).replace("-", "\\-") + "\\fR(" + m.group(4) + ")")
        pos = m.end()
    out.append(escape(text[pos:]))
    line = "".join(out)
    # a line may not start with a control character
    return "\\&" + line if line[:1] in (".", "'") else line


def convert(src, version):
    lines = src.split("\n")
    m = re.fullmatch(r"# ([a-z][a-z0-9-]*)\(([1-8])\) -- (.+)", lines[0])
    if not m:
        raise ValueError("line 1: expected '# name(N) -- summary'")
    name, section, summary = m.groups()
    out = [f'.TH "{name.upper()}" "{section}" "" "errgate {version}" "errgate manual"',
           ".nh", ".ad l", ".SH NAME", f"{name} \\- {escape(summary)}"]
    i, para = 1, []

    def flush():
        if para:
            out.append(".PP")
            out.extend(inline(p) for p in para)
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            flush()
            out.append(f'.SH "{line[3:].strip()}"')
        elif line.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                literal = escape(lines[i]).replace("-", "\\-")
                out.append("\\&" + literal if literal[:1] in (".", "'") else literal)
                i += 1
            if i == len(lines):
                raise ValueError("a literal block is not closed")
            out += [".fi", ".RE"]
        elif line.startswith("* "):
            flush()
            if not line.endswith(":"):
                raise ValueError(f"line {i + 1}: an item's term ends with ':'")
            out += [".TP", inline(line[2:-1])]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                out.append(inline(lines[i].strip()))
        elif line.startswith((" ", "\t", "#", "|", ">")):
            raise ValueError(f"line {i + 1}: not part of the subset: {line!r}")
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: man.py SOURCE.md OUTPUT VERSION")
    with open(sys.argv[1], encoding="utf-8") as f:
        src = f.read()
    try:
        page = convert(src, sys.argv[3])
    except ValueError as e:
        sys.exit(f"{sys.argv[1]}: {e}")
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
