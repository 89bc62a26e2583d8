"""`cmake --install BUILD --prefix P` (issue 27 item 14): into a temporary
prefix, then used as a project using errgate would use it: a small C program
compiled and linked with `pkg-config --cflags --libs errgate` (and
errgate-client), another built by a small CMake project with
find_package(errgate), both run; the man pages (one per command, each
listing every option its --help lists, rendered by groff without a warning);
the unit file naming the installed binary, accepted by systemd-analyze with
the installed man pages; an install for prefix /usr (through DESTDIR, as a
package is built) writing /usr paths.

The build installed is the one under test (the directory of ERRGATE_BIN).
A sanitized build's libraries need the sanitizer runtime, so the programs
are built with the same compiler and -fsanitize flags as the build (and
libFuzzer's coverage runtime when it was built for the fuzzers)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN

BUILD = os.path.dirname(os.path.abspath(BIN))
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# commands `errgate --help` lists (src/cli/main.c); the test checks a page
# for every command it lists, these included
COMMANDS = ["serve", "check-config", "demo-upstream", "translate", "docs", "catalog", "call", "keys"]

LIB_PROGRAM = r"""
#include <errgate/errgate.h>
#include <stdio.h>
int main(void)
{
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    eg_error_t *e = NULL;
    char buf[2048];
    if (eg_catalog_new_builtin(&cat) || eg_dialects_new_builtin(&set) ||
        eg_error_from_catalog(cat, "not_found", &e))
        return 1;
    size_t n = eg_render(e, eg_dialects_get(set, "jsonapi"), cat, buf, sizeof(buf));
    printf("%.*s\n", (int)n, buf);
    eg_error_free(e);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return n < sizeof(buf) ? 0 : 1;
}
"""

CLIENT_PROGRAM = r"""
#include <errgate/client.h>
#include <stdio.h>
int main(void)
{
    unsigned char rnd[16] = {0};
    char id[37];
    eg_client_options_t o;
    eg_client_options_default(&o);
    eg_uuid4(rnd, id);
    printf("%s\n", id);
    return 0;
}
"""
# the error eg_render writes for not_found in jsonapi (dialects/jsonapi.yaml,
# lib/catalog_builtin.c)
JSONAPI_NOT_FOUND = '"status":"404","code":"not_found"'
UUID_OF_ZEROS = "00000000-0000-4000-8000-000000000000"  # version 4, variant 10


def cache():
    path = os.path.join(BUILD, "CMakeCache.txt")
    if not os.path.exists(path):
        pytest.skip(f"{BUILD} is not a CMake build directory")
    with open(path) as f:
        return dict(re.findall(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", f.read(), re.M))


def build_flags(c):
    """The compiler and flags a program linked with this build's libraries needs."""
    cc = c.get("CMAKE_C_COMPILER") or "cc"
    on = lambda opt: c.get(opt, "OFF").upper() in ("ON", "1", "TRUE", "YES")
    flags = ["-fsanitize=address,undefined"] if on("EG_SANITIZE") else []
    if on("EG_FUZZ"):  # coverage callbacks in every object (make test's build)
        flags.append("-fsanitize=fuzzer-no-link")
    return cc, flags


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert p.returncode == 0, f"{cmd}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    cache()
    cmake = shutil.which("cmake")
    if not cmake:
        pytest.skip("cmake not found")
    p = tmp_path_factory.mktemp("prefix")
    run([cmake, "--install", BUILD, "--prefix", str(p)])
    return p


def libdir(prefix):
    """lib, or lib/<multiarch> when the build was configured for /usr."""
    for pc in prefix.rglob("errgate.pc"):
        return pc.parent.parent
    raise AssertionError(f"no errgate.pc under {prefix}")


def test_install_lays_down_everything(prefix):
    lib = libdir(prefix)
    for rel in ["bin/errgate", "include/errgate/errgate.h", "include/errgate/client.h",
                "lib/systemd/system/errgate.service", "lib/sysusers.d/errgate.conf",
                "etc/logrotate.d/errgate", "share/doc/errgate/examples/errgate.yaml", "etc/errgate/errgate.yaml",
                "share/man/man1/errgate.1"]:
        assert (prefix / rel).exists(), rel
    for rel in ["liberrgate.a", "liberrgate.so", "liberrgate-client.a", "pkgconfig/errgate.pc",
                "pkgconfig/errgate-client.pc", "cmake/errgate/errgateConfig.cmake",
                "cmake/errgate/errgateConfigVersion.cmake", "cmake/errgate/errgateTargets.cmake"]:
        assert (lib / rel).exists(), rel
    pc = (lib / "pkgconfig" / "errgate.pc").read_text()
    assert f"prefix={prefix}\n" in pc and "/usr/local" not in pc
    assert re.search(r"^Requires: jansson$", pc, re.M)
    assert re.search(r"^Requires.private: yaml-0.1 openssl libpcre2-8 zlib$", pc, re.M)
    # the example configuration the unit's ExecStartPre would check
    out = run([str(prefix / "bin" / "errgate"), "check-config", "--config",
               str(prefix / "share/doc/errgate/examples/errgate.yaml")])
    assert ": ok: listen 0.0.0.0:8080," in out.stdout


def test_a_c_program_builds_with_pkg_config(prefix, tmp_path):
    pkg_config = shutil.which("pkg-config")
    if not pkg_config:
        pytest.skip("pkg-config not found")
    cc, flags = build_flags(cache())
    lib = libdir(prefix)
    env = dict(os.environ, PKG_CONFIG_PATH=str(lib / "pkgconfig"), LD_LIBRARY_PATH=str(lib))
    env.pop("PKG_CONFIG_LIBDIR", None)
    for name, program, module, expect in [("lib", LIB_PROGRAM, "errgate", JSONAPI_NOT_FOUND),
                                          ("client", CLIENT_PROGRAM, "errgate-client", UUID_OF_ZEROS)]:
        src = tmp_path / f"{name}.c"
        src.write_text(program)
        pc = run([pkg_config, "--cflags", "--libs", module], env=env).stdout.split()
        assert f"-I{prefix}/include" in pc and f"-L{lib}" in pc, pc
        exe = tmp_path / name
        run([cc, *flags, "-o", str(exe), str(src), *pc], env=env)
        out = run([str(exe)], env=env).stdout
        assert expect in out, out
        if name == "lib":  # linked against the installed shared library, not a copy
            ldd = run(["ldd", str(exe)], env=env).stdout
            assert f"{lib}/liberrgate.so.0" in ldd, ldd
    # --static: every library behind it, for a static link
    static = run([pkg_config, "--static", "--libs", "errgate"], env=env).stdout.split()
    for flag in ["-lerrgate", "-ljansson", "-lyaml", "-lssl", "-lpcre2-8", "-lz"]:
        assert flag in static, static


def test_a_cmake_project_builds_with_find_package(prefix, tmp_path):
    cmake = shutil.which("cmake")
    c = cache()
    cc, flags = build_flags(c)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.c").write_text(LIB_PROGRAM)
    (tmp_path / "src" / "client.c").write_text(CLIENT_PROGRAM)
    (tmp_path / "src" / "CMakeLists.txt").write_text("""
cmake_minimum_required(VERSION 3.25)
project(uses_errgate C)
find_package(errgate 0.1 REQUIRED)
add_executable(uses_lib lib.c)
target_link_libraries(uses_lib PRIVATE errgate::errgate)
add_executable(uses_client client.c)
target_link_libraries(uses_client PRIVATE errgate::errgate_client)
add_executable(uses_shared lib.c)
target_link_libraries(uses_shared PRIVATE errgate::errgate_shared)
""")
    out = tmp_path / "build"
    run([cmake, "-S", str(tmp_path / "src"), "-B", str(out), f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DCMAKE_C_COMPILER={cc}", f"-DCMAKE_C_FLAGS={' '.join(flags)}",
         f"-DCMAKE_EXE_LINKER_FLAGS={' '.join(flags)}"])
    run([cmake, "--build", str(out), "-j2"])
    assert JSONAPI_NOT_FOUND in run([str(out / "uses_lib")]).stdout
    assert JSONAPI_NOT_FOUND in run([str(out / "uses_shared")]).stdout
    assert UUID_OF_ZEROS in run([str(out / "uses_client")]).stdout


def help_options(text):
    """The options a --help text names: --long and -X."""
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])", text))


def section(text, name):
    """One section of a rendered page: from its heading to the next."""
    m = re.search(rf"^{name}\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)", text, re.M | re.S)
    assert m, f"no {name} section"
    return m.group(1)


def render(page):
    """The page as text (groff, man macros), and groff's warnings (-ww)."""
    p = subprocess.run(["groff", "-man", "-ww", "-Tascii", "-P-cbou", "-rLL=200n", str(page)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout, p.stderr


def test_every_command_has_a_man_page_with_every_option(prefix):
    if not shutil.which("groff"):
        pytest.skip("groff not found (Debian package groff-base)")
    man1 = prefix / "share" / "man" / "man1"
    listed = re.findall(r"^  ([a-z-]+) ", run([BIN, "--help"]).stdout, re.M)
    assert set(COMMANDS) <= set(listed), listed
    text, warnings = render(man1 / "errgate.1")
    assert warnings == ""
    for cmd in listed:
        assert f"errgate-{cmd}(1)" in section(text, "COMMANDS"), f"errgate(1) does not list {cmd}"
    assert {"--help", "--version"} <= help_options(text)
    for cmd in listed:
        page = man1 / f"errgate-{cmd}.1"
        assert page.exists(), f"no man page for errgate {cmd}"
        text, warnings = render(page)
        assert warnings == "", f"{page.name}: {warnings}"
        assert text.startswith(f"ERRGATE-{cmd.upper()}(1)"), text[:80]
        usage = run([BIN, cmd, "--help"]).stdout
        options = help_options(section(text, "OPTIONS"))
        missing = help_options(usage) - options
        assert not missing, f"errgate-{cmd}(1) lacks {sorted(missing)} that --help lists"


def test_the_installed_unit_names_the_installed_binary(prefix, tmp_path):
    unit = (prefix / "lib/systemd/system/errgate.service").read_text()
    assert f"ExecStart={prefix}/bin/errgate serve --config /etc/errgate/errgate.yaml\n" in unit
    assert not re.search(r"@[A-Z_]+@", unit), "a placeholder was left"
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not found (Debian package systemd)")
    # with its Documentation= pages found among the installed ones
    (tmp_path / "errgate.service").write_text(unit)
    env = dict(os.environ, MANPATH=str(prefix / "share" / "man"))
    p = subprocess.run([analyze, "verify", str(tmp_path / "errgate.service")], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_an_install_for_usr_writes_usr_paths(tmp_path):
    """As a package is built: prefix /usr, staged under DESTDIR."""
    cache()
    cmake = shutil.which("cmake")
    dest = tmp_path / "stage"
    # an operator's configuration is never replaced by the example
    (dest / "etc/errgate").mkdir(parents=True)
    (dest / "etc/errgate/errgate.yaml").write_text("# mine\n")
    run([cmake, "--install", BUILD, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=str(dest)))
    assert (dest / "etc/errgate/errgate.yaml").read_text() == "# mine\n"
    pcs = list(dest.rglob("errgate.pc"))
    assert len(pcs) == 1
    pc = pcs[0].read_text()
    assert "prefix=/usr\n" in pc and "libdir=${prefix}/lib" in pc and str(dest) not in pc
    unit = (dest / "usr/lib/systemd/system/errgate.service").read_text()
    assert "ExecStart=/usr/bin/errgate serve" in unit
    assert (dest / "etc/logrotate.d/errgate").exists()  # /etc, not /usr/etc


def test_the_debian_package_holds_the_service(tmp_path):
    """cpack -G DEB (cmake/package.cmake) on the build under test."""
    c = cache()
    cpack, dpkg_deb = shutil.which("cpack"), shutil.which("dpkg-deb")
    if not cpack or not dpkg_deb:
        pytest.skip("cpack or dpkg-deb not found")
    run([cpack, "-G", "DEB", "-B", str(tmp_path), "--config", os.path.join(BUILD, "CPackConfig.cmake")],
        cwd=tmp_path)
    debs = list(tmp_path.glob("errgate_*.deb"))
    assert len(debs) == 1, list(tmp_path.iterdir())
    deb = str(debs[0])
    listing = run([dpkg_deb, "-c", deb]).stdout
    files = {line.split()[-1] for line in listing.splitlines()}
    lib = "./usr/" + c.get("CMAKE_INSTALL_LIBDIR", "lib")
    want = ["./usr/bin/errgate", "./usr/lib/systemd/system/errgate.service", "./usr/lib/sysusers.d/errgate.conf",
            "./etc/logrotate.d/errgate", "./etc/errgate/errgate.yaml", "./usr/share/man/man1/errgate.1",
            f"{lib}/pkgconfig/errgate.pc", f"{lib}/cmake/errgate/errgateConfig.cmake", f"{lib}/liberrgate.a",
            "./usr/include/errgate/errgate.h"]
    want += [f"./usr/share/man/man1/errgate-{cmd}.1" for cmd in COMMANDS]
    for path in want:
        assert path in files, f"{path} is not in the package:\n{listing}"
    assert not any("/usr/local" in f or "/usr/etc" in f for f in files), listing
    unit = run(f"{dpkg_deb} --fsys-tarfile {deb} | tar -xO ./usr/lib/systemd/system/errgate.service",
               shell=True).stdout
    assert "ExecStart=/usr/bin/errgate serve --config /etc/errgate/errgate.yaml\n" in unit
    pc = run(f"{dpkg_deb} --fsys-tarfile {deb} | tar -xO {lib}/pkgconfig/errgate.pc", shell=True).stdout
    assert "prefix=/usr\n" in pc
    depends = run([dpkg_deb, "-f", deb, "Depends"]).stdout
    for dep in ["libsystemd0", "libjansson4", "libpcre2-8-0", "zlib1g", "libcurl4"]:
        assert dep in depends, depends
    control = tmp_path / "control"
    run([dpkg_deb, "-e", deb, str(control)])
    assert (control / "conffiles").read_text().split() == ["/etc/errgate/errgate.yaml", "/etc/logrotate.d/errgate"]
    assert os.access(control / "postinst", os.X_OK)
