"""What the hosts' files are like, read in one SSH round trip per host.

pyinfra 3 keeps no fact cache: each unchanged file of a deploy costs three facts (the
file, its directory, its SHA-1), one SSH round trip each, while the deploy runs.
Each files.put, template, directory and file operation registers its path here as
the deploy is prepared; the first of those facts asked for a host while it runs
reads them all at once. An answer serves until an operation ran commands on that
host: a file operation makes its own path (and what is above or below it) be asked
again, any other operation everything. After that, a question reads the paths of the
next WINDOW file operations still to run at once (a first deploy changes the host
every few operations: reading every path again each time cost it 20 s of 105).
"""
import functools
import posixpath
from collections import defaultdict

from pyinfra import host as current_host
from pyinfra.operations import files

from pyinfra.api import FactBase
from pyinfra.api import facts as pyinfra_facts
from pyinfra.api.state import StateStage
from pyinfra.facts.files import Directory, File, Sha1File

MARK = "--mailstack-filefacts--"
SCRIPT_MAX = 48 * 1024
WINDOW = 24
FACTS = (File, Sha1File, Directory)
PATHS = defaultdict(set)        # host name -> the paths its deploy's file operations write
OWN = defaultdict(dict)         # host name -> {a file operation's hash: the path it writes}
_KNOWN = {}                     # (run, host name) -> Known
_original = pyinfra_facts._get_fact


class Known:
    """What is known of one host's files in one run."""

    def __init__(self):
        self.answers = None     # {(fact, path): answer}, None: nothing read yet
        self.read = set()       # paths (files) whose three facts are in answers
        self.counted = set()    # operations whose commands were taken into account


class Batch(FactBase):
    """Each command's output after a line MARK (the facts' own commands)."""

    def command(self, script):
        return script

    def process(self, output):
        return list(output)


def register(host_name, path):
    PATHS[host_name].add(path)


def wanted(paths):
    files = sorted(paths)
    dirs = sorted({posixpath.dirname(p) for p in files} - {""})
    return ([(File, p) for p in files] + [(Sha1File, p) for p in files]
            + [(Directory, p) for p in sorted(set(files) | set(dirs))])


def forget(known, state, host):
    """Drop the answers that the operations which ran commands since the last look may
    have made wrong."""
    for op_hash, data in state.ops[host].items():
        meta = data.operation_meta
        if op_hash in known.counted or not meta.is_complete():
            continue
        known.counted.add(op_hash)
        if not meta.executed or known.answers is None:
            continue
        path = OWN[host.name].get(op_hash)
        if path is None:
            known.answers.clear()
            known.read.clear()
            continue
        for cls, other in list(known.answers):
            if other == path or other.startswith(path.rstrip("/") + "/") or path.startswith(other + "/"):
                del known.answers[cls, other]
                known.read.discard(other)


def upcoming(known, state, host):
    """The paths still to be asked about, in the order their operations run (a path
    no operation of ours registered counts as still to come)."""
    own = OWN[host.name]
    ahead = [own[op] for op in state.get_op_order() if op in own and op not in known.counted]
    written = set(own.values())
    return list(dict.fromkeys(ahead + sorted(p for p in PATHS[host.name] if p not in written)))


def read_all(state, host, paths):
    facts = wanted(paths)
    made = [cls() for cls, _ in facts]         # a fact's process() may need its command()'s path
    parts = [f"echo {MARK}; ( {command(fact, path)} )" for fact, (_, path) in zip(made, facts)]
    # One shell argument holds at most 128 KiB (Linux's MAX_ARG_STRLEN): a few reads
    # for a host with many files.
    scripts, size = [[]], 0
    for part in parts:
        if size + len(part) > SCRIPT_MAX and scripts[-1]:
            scripts.append([])
            size = 0
        scripts[-1].append(part)
        size += len(part) + 2
    lines = [line for script in scripts
             for line in _original(state, host, Batch, None, {"script": "; ".join(script)}) or []]
    chunks, current = [], None
    for line in lines:
        if line == MARK:
            current = []
            chunks.append(current)
        elif current is not None:
            current.append(line)
    if len(chunks) != len(facts):
        raise RuntimeError(f"{host.name}: {len(chunks)} answers to {len(facts)} file facts")
    return {key: (fact.process(out) if out else fact.default()) for key, fact, out in zip(facts, made, chunks)}


def command(fact, path):
    made = fact.command(path=path)
    return made.get_raw_value() if hasattr(made, "get_raw_value") else made


def _get_fact(state, host, cls, args=None, kwargs=None, *rest):
    path = (kwargs or {}).get("path")
    if not (state.current_stage == StateStage.Execute and cls in FACTS and not args
            and list(kwargs or {}) == ["path"] and (path in PATHS[host.name] or path in {
                posixpath.dirname(p) for p in PATHS[host.name]})):
        return _original(state, host, cls, args, kwargs, *rest)
    known = _KNOWN.setdefault((id(state), host.name), Known())
    forget(known, state, host)
    if known.answers is None or (cls, path) not in known.answers:
        ahead = [p for p in upcoming(known, state, host) if p not in known.read]
        if known.answers is None:           # the first question: every path at once
            known.answers = {}
        elif path in ahead:                 # the next few operations' paths
            ahead = [path] + [p for p in ahead if p != path][:WINDOW - 1]
        else:                               # asked again after its own operation ran
            ahead = []
        if ahead:
            known.answers.update(read_all(state, host, ahead))
            known.read.update(ahead)
    if (cls, path) not in known.answers:
        known.answers[cls, path] = _original(state, host, cls, args, kwargs, *rest)
    return known.answers[cls, path]


# File operations whose path is read at once: the argument naming it, and its place.
OPERATIONS = {"put": ("dest", 1), "template": ("dest", 1), "directory": ("path", 0), "file": ("path", 0)}


def registering(op, field, place):
    @functools.wraps(op)
    def registered(*args, **kwargs):
        path = kwargs.get(field, args[place] if len(args) > place else None)
        meta = op(*args, **kwargs)
        if isinstance(path, str):
            register(current_host.name, path)
            if getattr(meta, "_hash", None):
                OWN[current_host.name][meta._hash] = path
        return meta
    registered.registers = True
    return registered


def install():
    """Serve the file operations' facts from one read per host (deploy.py)."""
    pyinfra_facts._get_fact = _get_fact
    for name, (field, place) in OPERATIONS.items():
        if not getattr(getattr(files, name), "registers", False):
            setattr(files, name, registering(getattr(files, name), field, place))
