"""springfield(8) keeps up with springfield --help.

The man page (man/springfield.8, made from man/springfield.8.in) is written
by hand; this is what keeps it true as options are added.  Every option
--help prints must have an entry in OPTIONS, tagged exactly as --help tags
it (the flags and the value's name), with the default --help gives and its
SPRINGFIELD_* twin; the man page may document no option --help does not
print; every environment variable and signal --help names is in
ENVIRONMENT or SIGNALS; and man renders the page without a warning.  The
commented deploy/springfield.env, which the Debian package installs as
/etc/springfield/springfield.env, must list every setting too.

When this fails after a new option: add its entry (.TP, .BI \\-\\-name " VALUE")
to OPTIONS in man/springfield.8.in, its twin to ENVIRONMENT, and a
commented #SPRINGFIELD_NAME=default line to deploy/springfield.env.
"""

import os
import re
import subprocess

import pytest

import servers

MAN_SOURCE = os.path.join(servers.REPO, "man", "springfield.8.in")
MAN_PAGE = os.path.join(servers.REPO, "man", "springfield.8")
ENV_EXAMPLE = os.path.join(servers.REPO, "deploy", "springfield.env")


def springfield(*args, env=None):
    binary = servers.springfield_bin()
    if not os.access(binary, os.X_OK):
        raise servers.ServerError("springfield binary %s is missing (build it first)" % binary)
    e = {k: v for k, v in os.environ.items() if not k.startswith("SPRINGFIELD_")}
    e.update(env or {})
    return subprocess.run([binary] + list(args), env=e, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def help_text():
    p = springfield("--help")
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def built_man_page():
    """man/springfield.8, brought up to date with its source by make."""
    p = subprocess.run(["make", "-s", "-C", servers.REPO, "man/springfield.8"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert p.returncode == 0, "make man/springfield.8 failed (is the tree configured?)\n%s" \
        % p.stdout.decode(errors="replace")
    return MAN_PAGE


def render(page, width=1000):
    """(text, warnings) of man -l: a width no line reaches, so nothing is
    broken or hyphenated."""
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH=str(width))
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode(), p.stderr.decode(errors="replace")


def man_sections(text):
    """{heading: [lines]} of the rendered page."""
    out, current = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            current = line.strip()
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def tag_parts(tag):
    """'--listen ADDR' -> (('--listen',), 'ADDR'); '-h, --help' -> (('-h', '--help'), None)."""
    m = re.match(r"^(.*?)(?: ([A-Z][A-Z_]*))?$", tag.strip())
    flags = tuple(f.strip() for f in m.group(1).split(","))
    for f in flags:
        assert re.match(r"^--?[A-Za-z][\w-]*$", f), "not a flag: %r in %r" % (f, tag)
    return flags, m.group(2)


# "  --flag[, --other] [VALUE]   text": the flags, the value's name, the text
HELP_ENTRY = re.compile(r"^  (--?[A-Za-z][\w-]*(?:, --?[A-Za-z][\w-]*)*)(?: ([A-Z][A-Z_]*))?(?:\s+(.*))?$")


def help_options():
    """[(tag, text)] of the options --help lists."""
    lines = help_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("Options"))
    entries = []
    for line in lines[start + 1:]:
        if not line.strip():
            if entries:
                break
            continue
        m = HELP_ENTRY.match(line)
        if m:
            tag = m.group(1) + (" " + m.group(2) if m.group(2) else "")
            entries.append([tag, (m.group(3) or "").strip()])
        elif entries and line.startswith("   "):
            entries[-1][1] += " " + line.strip()
    assert entries, "no options found in --help"
    return [(t, x) for t, x in entries]


def man_options(sections):
    """[(tag, body)] of the OPTIONS entries of the rendered page."""
    entries = []
    for line in sections.get("OPTIONS", []):
        if re.match(r"^ {7}-", line):
            entries.append([line.strip(), ""])
        elif entries and line.startswith(" " * 14):
            entries[-1][1] += " " + line.strip()
    return [(t, b) for t, b in entries]


def twin(flag):
    return "SPRINGFIELD_" + flag[2:].upper().replace("-", "_")


def twins_of(options):
    """The SPRINGFIELD_* twin of every long option but --help, --version and
    the negation (--no-X) listed beside its option."""
    out = []
    for tag, _ in options:
        flags, _ = tag_parts(tag)
        for f in flags:
            if not f.startswith("--") or f in ("--help", "--version"):
                continue
            if f.startswith("--no-") and "--" + f[5:] in flags:
                continue
            out.append((f, twin(f)))
    return out


def help_default(text):
    """The value --help gives as the default, or None."""
    m = re.search(r"\(default:? ([^;)]*)", text)
    if not m:
        return None
    value = m.group(1).split(": ")[0].strip()
    return value.split()[-1].strip(",.")


def help_variables():
    """The environment variables --help names besides the twins: in what
    follows the options."""
    lines = help_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("Options"))
    end = next(i for i in range(start + 2, len(lines)) if not lines[i].strip())
    text = "\n".join(lines[end:])
    names = set(re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b", text))
    return sorted(n for n in names if not n.startswith("SPRINGFIELD_"))


@pytest.fixture(scope="module")
def page():
    text, warnings = render(built_man_page())
    return text, warnings, man_sections(text)


def test_man_renders_without_warnings(page):
    text, warnings, sections = page
    assert warnings == "", "man --warnings -l man/springfield.8:\n" + warnings
    p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", MAN_PAGE],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode(errors="replace")
    for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "SIGNALS",
              "EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO"):
        assert s in sections, "the man page has no %s section" % s
    # nothing left unsubstituted
    assert "@" not in re.sub(r"\S+@\S+\.\S+", "", text), \
        [l for l in text.splitlines() if "@" in l]


def test_whatis_entry(page):
    p = subprocess.run(["lexgrog", MAN_PAGE], stdout=subprocess.PIPE, timeout=30)
    assert re.search(rb': "springfield - \S', p.stdout), p.stdout


def test_man_page_version_is_the_programs(page):
    version = springfield("--version").stdout.decode().strip()
    footer = page[0].rstrip().splitlines()[-1]
    assert footer.split()[0:2] == version.split(), (footer, version)


def test_every_help_option_has_its_man_entry(page):
    helps = help_options()
    mans = man_options(page[2])
    help_tags = {tag_parts(t)[0]: t for t, _ in helps}
    man_tags = {tag_parts(t)[0]: t for t, _ in mans}
    help_flags = {f for fl in help_tags for f in fl}
    man_flags = {f for fl in man_tags for f in fl}
    missing = sorted(help_flags - man_flags)
    stale = sorted(man_flags - help_flags)
    assert not missing, "options --help prints that springfield(8) does not document: %s" % missing
    assert not stale, "options springfield(8) documents that --help does not print: %s" % stale
    # tagged alike: the same flags together, the same name for the value
    for flags, tag in help_tags.items():
        assert man_tags.get(flags) == tag, \
            "--help tags %r, springfield(8) %r" % (tag, man_tags.get(flags))


def test_every_default_in_help_is_the_man_pages(page):
    mans = {tag_parts(t)[0]: body for t, body in man_options(page[2])}
    checked = 0
    for tag, text in help_options():
        default = help_default(text)
        if default is None:
            continue
        body = mans[tag_parts(tag)[0]]
        assert re.search(r"(?<![\w.:])%s(?![\w]|[.:]\S)" % re.escape(default), body), \
            "--help gives %s the default %s; its man entry does not: %r" % (tag, default, body)
        checked += 1
    assert checked >= 15, "fewer defaults found in --help than expected (%d)" % checked


def test_every_twin_is_documented_and_real(page):
    mans = {f: body for t, body in man_options(page[2]) for f in tag_parts(t)[0]}
    env_section = " ".join(page[2]["ENVIRONMENT"])
    twins = twins_of(help_options())
    assert len(twins) >= 18, twins
    for flag, name in twins:
        assert name in mans[flag], "the man entry of %s does not name its twin %s" % (flag, name)
        assert re.search(r"\b%s\b" % name, env_section), "ENVIRONMENT does not list %s" % name
        if flag == "--listen":
            continue  # any word is an address until it is opened
        # the twin is read: a value no setting takes is refused, by that name
        p = springfield("--version", env={name: "not-a-value"})
        assert p.returncode == 2 and name.encode() in p.stderr, \
            "%s=not-a-value: status %d, %r" % (name, p.returncode, p.stderr)
    # and no twin of an option that is gone
    documented = set(re.findall(r"\bSPRINGFIELD_[A-Z_]*[A-Z]\b", env_section)) - {"SPRINGFIELD_NAME"}
    assert documented == {n for _, n in twins}, \
        "ENVIRONMENT twins without an option: %s" % sorted(documented - {n for _, n in twins})


def test_every_variable_and_signal_in_help_is_in_the_man_page(page):
    sections = page[2]
    env_section = " ".join(sections["ENVIRONMENT"])
    variables = help_variables()
    assert "REDIS_HOST" in variables and "FCGI_WEB_SERVER_ADDRS" in variables, variables
    for v in variables:
        assert re.search(r"\b%s\b" % v, env_section), "ENVIRONMENT does not describe %s" % v
    signals = set(re.findall(r"\bSIG[A-Z]+\b", help_text()))
    assert {"SIGTERM", "SIGINT", "SIGHUP"} <= signals, signals
    signal_section = " ".join(sections["SIGNALS"])
    for s in signals:
        assert re.search(r"\b%s\b" % s, signal_section), "SIGNALS does not describe %s" % s
    assert re.search(r"^ {7}3\b", "\n".join(sections["EXIT STATUS"]), re.M), \
        "EXIT STATUS does not describe 3 (requests dropped at the deadline)"


def test_one_example_per_launch_mode(page):
    examples = "\n".join(page[2]["EXAMPLES"])
    for what in ("systemctl enable --now springfield.socket",  # systemd socket activation
                 "spawn-fcgi -n",                              # inherited socket on fd 0
                 "--listen unix:",                             # a unix socket of its own
                 "--workers",                                  # TCP, several workers
                 "bin-path"):                                  # started by the front server
        assert what in examples, "EXAMPLES has no example with %r" % what


def test_env_example_lists_every_setting():
    """deploy/springfield.env: a commented line per twin and per variable."""
    with open(ENV_EXAMPLE) as f:
        text = f.read()
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.M))
    wanted = {n for _, n in twins_of(help_options())} | set(help_variables())
    assert not wanted - listed, "deploy/springfield.env does not list %s" % sorted(wanted - listed)
    assert not listed - wanted, "deploy/springfield.env lists unknown %s" % sorted(listed - wanted)
    # every line is a comment or blank: the defaults apply until one is set
    for line in text.splitlines():
        assert not line or line.startswith("#"), "a setting is on by default: %r" % line
