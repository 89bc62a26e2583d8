#!/usr/bin/python3
"""jsts.py - runs the JSON-Schema-Test-Suite through `errgate validate`.

usage: scripts/jsts.py SUITE_DIR ERRGATE_BIN [FILE ...] [-v]

SUITE_DIR is a checkout's tests/draft2020-12 directory (or any directory of
suite files: a JSON array of {description, schema, tests: [{description,
data, valid}]}). Every test runs as `errgate validate --schema S` with the
test's data on stdin; exit 0 means valid, 1 invalid, 2 that the schema was
refused at load (counted as a failure of each of its tests, and listed
apart, since errgate refuses what it does not support instead of guessing).
Prints the pass rate per file and overall; -v lists every failure.

A group whose schema needs what errgate does not claim is counted apart as
out of scope (its tests still run, and any pass is listed): $id-based or
remote $ref resolution, $anchor / $dynamicRef, unevaluated*, and
draft 2019-09's additionalItems.
FILE names (relative to SUITE_DIR, e.g. "ref.json" or
"optional/format/date.json") restrict the run; default: every *.json below.

The suite is public test data: keep it outside the repository.
"""
import json
import os
import subprocess
import sys
import tempfile


UNCLAIMED = {"unevaluatedProperties", "unevaluatedItems", "additionalItems", "$anchor",
             "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"}
MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
LISTS = {"allOf", "anyOf", "oneOf", "prefixItems"}
SKIP = {"enum", "const", "examples", "default", "required", "dependentRequired"}


def out_of_scope(schema, root=True):
    """Why the schema is beyond errgate's claimed vocabulary, or None."""
    if not isinstance(schema, dict):
        return None
    for k, v in schema.items():
        if k in UNCLAIMED:
            return "uses %s" % k
        if k == "$id" and not root:
            return "$id below the root"
        if k == "$ref" and isinstance(v, str) and not v.startswith("#"):
            return "$ref by URI ($id-based or remote)"
        if k in SKIP:
            continue
        subs = []
        if k in MAPS and isinstance(v, dict):
            subs = list(v.values())
        elif k in LISTS and isinstance(v, list):
            subs = v
        elif isinstance(v, (dict, bool)) and k not in MAPS:
            subs = [v]
        for sub in subs:
            why = out_of_scope(sub, False)
            if why:
                return why
    return None


def run_file(path, binary, verbose):
    with open(path, encoding="utf-8") as f:
        groups = json.load(f)
    passed = total = refused = oos = oos_passed = 0
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        for gi, group in enumerate(groups):
            schema_path = os.path.join(tmp, "schema%d.json" % gi)
            with open(schema_path, "w", encoding="utf-8") as f:
                json.dump(group["schema"], f)
            why = out_of_scope(group["schema"])
            for test in group["tests"]:
                if why:
                    oos += 1
                    oos_passed += run_one(binary, schema_path, test) == "pass"
                    continue
                total += 1
                verdict = run_one(binary, schema_path, test)
                if verdict == "pass":
                    passed += 1
                    continue
                refused += verdict.startswith("schema refused")
                fails.append((group["description"], test["description"], verdict))
    if verbose:
        for g, t, why in fails:
            print("    FAIL %s / %s: %s" % (g, t, why))
    return passed, total, refused, oos, oos_passed


def run_one(binary, schema_path, test):
    """'pass', or why the test failed."""
    data = json.dumps(test["data"]).encode()
    p = subprocess.run([binary, "validate", "--schema", schema_path], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode == 2:
        return "schema refused: " + p.stderr.decode(errors="replace").strip().splitlines()[-1]
    if p.returncode not in (0, 1):
        return "exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace"))
    got = p.returncode == 0
    if got == test["valid"]:
        return "pass"
    return "said %s, want %s" % ("valid" if got else "invalid",
                                 "valid" if test["valid"] else "invalid")


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    suite, binary, only = args[0], args[1], args[2:]
    files = only
    if not files:
        for root, _, names in os.walk(suite):
            for n in names:
                if n.endswith(".json"):
                    files.append(os.path.relpath(os.path.join(root, n), suite))
    files.sort()
    all_passed = all_total = all_oos = 0
    for rel in files:
        passed, total, refused, oos, oos_passed = run_file(os.path.join(suite, rel), binary,
                                                           verbose)
        all_passed += passed
        all_total += total
        all_oos += oos
        note = " (%d in schemas refused at load)" % refused if refused else ""
        if oos:
            note += " [+%d out of scope, %d of them pass]" % (oos, oos_passed)
        print("%-40s %4d / %4d  %5.1f%%%s" % (rel, passed, total,
                                             100.0 * passed / total if total else 100.0, note))
        sys.stdout.flush()
    print("%-40s %4d / %4d  %5.1f%%  [+%d out of scope]" % (
        "overall", all_passed, all_total, 100.0 * all_passed / all_total if all_total else 100.0,
        all_oos))
    return 0 if all_passed == all_total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
