"""roles/filefacts.py: the file facts of a host read at once give the answers pyinfra's
own facts give one by one (run here, by a real shell, on real files), and are read
again after an operation changed something on the host."""
import hashlib
import subprocess
from types import SimpleNamespace

import pytest
from pyinfra.api.state import StateStage
from pyinfra.facts.files import Directory, File, Sha1File

from roles import filefacts


def shell(command):
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
    return out.splitlines()


def one_by_one(state, host, cls, args=None, kwargs=None, *rest):
    """pyinfra's _get_fact, run here: the fact's own command, then its process()."""
    state.asked.append((cls.__name__, kwargs.get("path")))
    fact = cls()
    lines = shell(filefacts.command(fact, **kwargs) if cls is not filefacts.Batch else kwargs["script"])
    if cls is filefacts.Batch:
        state.batches += 1
    return fact.process(lines) if lines else fact.default()


class Host:
    name = "mx1.acme.test"


class Op:
    def __init__(self, changed):
        self.operation_meta = SimpleNamespace(is_complete=lambda: True, executed=changed)


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setattr(filefacts, "_original", one_by_one)
    monkeypatch.setattr(filefacts, "PATHS", filefacts.defaultdict(set))
    monkeypatch.setattr(filefacts, "_KNOWN", {})
    monkeypatch.setattr(filefacts, "OWN", filefacts.defaultdict(dict))
    host = Host()
    state = SimpleNamespace(current_stage=StateStage.Execute, ops={host: {}}, batches=0, asked=[],
                            get_op_order=lambda: list(filefacts.OWN[host.name]))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "main.cf").write_text("myhostname = mx1.acme.test\n")
    (tmp_path / "etc" / "with space.conf").write_text("x\n")
    (tmp_path / "etc" / "users").write_text("")
    paths = [str(tmp_path / "etc" / n) for n in ("main.cf", "with space.conf", "users", "absent")]
    paths.append(str(tmp_path / "gone" / "file"))
    for p in paths:
        filefacts.register(host.name, p)
    return state, host, paths


def asked(state, host, paths):
    return {(cls.__name__, p): filefacts._get_fact(state, host, cls, (), {"path": p})
            for p in paths for cls in (File, Sha1File, Directory)}


def test_every_file_fact_answers_as_pyinfra_s_own_and_a_host_is_read_once(world):
    state, host, paths = world
    answers = asked(state, host, paths + [p.rsplit("/", 1)[0] for p in paths])
    assert answers == {key: one_by_one(state, host, cls, (), {"path": key[1]})
                       for key in answers for cls in (File, Sha1File, Directory) if cls.__name__ == key[0]}
    assert answers[("Sha1File", paths[0])] == hashlib.sha1(b"myhostname = mx1.acme.test\n").hexdigest()
    assert answers[("File", paths[3])] is None and answers[("Directory", paths[4].rsplit("/", 1)[0])] is None
    assert state.batches == 1


def test_answers_are_read_again_after_an_operation_changed_the_host(world):
    state, host, paths = world
    before = asked(state, host, paths)
    state.ops[host]["a no-op"] = Op(changed=False)
    asked(state, host, paths)
    assert state.batches == 1
    with open(paths[0], "a") as f:
        f.write("smtpd_tls_security_level = may\n")
    state.ops[host]["an upload"] = Op(changed=True)
    after = asked(state, host, paths)
    assert state.batches == 2
    assert after[("Sha1File", paths[0])] != before[("Sha1File", paths[0])]


def test_many_files_are_read_in_a_few_shell_arguments_of_bounded_size(world, monkeypatch):
    state, host, paths = world
    monkeypatch.setattr(filefacts, "SCRIPT_MAX", 600)
    answers = asked(state, host, paths)
    assert answers[("Sha1File", paths[1])] == one_by_one(state, host, Sha1File, (), {"path": paths[1]})
    assert state.batches > 2


def test_other_facts_paths_and_stages_go_to_pyinfra(world, monkeypatch):
    state, host, paths = world
    seen = []
    monkeypatch.setattr(filefacts, "_original", lambda s, h, cls, args=None, kwargs=None: seen.append(
        (cls.__name__, kwargs)))
    filefacts._get_fact(state, host, File, (), {"path": "/etc/not-ours"})
    state.current_stage = StateStage.Prepare
    filefacts._get_fact(state, host, File, (), {"path": paths[0]})
    assert seen == [("File", {"path": "/etc/not-ours"}), ("File", {"path": paths[0]})]


def test_file_operations_register_their_path_once_wrapped(monkeypatch):
    calls = []
    monkeypatch.setattr(filefacts, "PATHS", filefacts.defaultdict(set))
    monkeypatch.setattr(filefacts, "current_host", Host())
    monkeypatch.setattr(filefacts.pyinfra_facts, "_get_fact", filefacts.pyinfra_facts._get_fact)
    for name in filefacts.OPERATIONS:
        monkeypatch.setattr(filefacts.files, name, lambda *a, _n=name, **k: calls.append((_n, a, k)) or _n)
    filefacts.install()
    filefacts.install()                         # deploy.py runs once per host: wrapped once
    assert filefacts.files.put("src", "/etc/postfix/main.cf", mode="644") == "put"
    filefacts.files.template(src="t.j2", dest="/etc/dovecot/dovecot.conf")
    filefacts.files.directory("/var/vmail", user="vmail")
    filefacts.files.file(path="/etc/old", present=False)
    assert filefacts.PATHS[Host.name] == {"/etc/postfix/main.cf", "/etc/dovecot/dovecot.conf", "/var/vmail",
                                          "/etc/old"}
    assert calls[0] == ("put", ("src", "/etc/postfix/main.cf"), {"mode": "644"})
    assert len(calls) == 4


def test_a_file_operation_that_ran_makes_only_its_own_path_be_asked_again(world):
    state, host, paths = world
    asked(state, host, paths)
    filefacts.OWN[host.name]["put main.cf"] = paths[0]
    with open(paths[0], "a") as f:
        f.write("smtpd_tls_security_level = may\n")
    state.ops[host]["put main.cf"] = Op(changed=True)
    state.asked.clear()
    after = asked(state, host, paths)
    assert state.batches == 1
    directory = paths[0].rsplit("/", 1)[0]
    assert sorted(state.asked) == [("Directory", paths[0]), ("File", paths[0]), ("Sha1File", paths[0])]
    assert after[("Sha1File", paths[0])] == hashlib.sha1(
        b"myhostname = mx1.acme.test\nsmtpd_tls_security_level = may\n").hexdigest()
    state.asked.clear()
    filefacts._get_fact(state, host, Directory, (), {"path": directory})   # its directory: asked again too
    assert state.asked == [("Directory", directory)]


def test_after_the_host_changed_a_question_reads_the_next_operations_paths_only(world, monkeypatch):
    state, host, paths = world
    monkeypatch.setattr(filefacts, "WINDOW", 2)
    for n, p in enumerate(paths):                   # five file operations, in this order
        filefacts.OWN[host.name][f"op{n}"] = p
    state.get_op_order = lambda: ["install"] + [f"op{n}" for n in range(len(paths))]
    filefacts._get_fact(state, host, File, (), {"path": paths[0]})
    assert state.batches == 1                       # the first question: every path
    state.ops[host]["install"] = Op(changed=True)   # not a file operation: everything stale
    state.ops[host]["op0"] = Op(changed=False)
    state.asked.clear()
    answers = {p: filefacts._get_fact(state, host, File, (), {"path": p}) for p in paths[1:]}
    # paths 1-2, then 3-4: two reads of two paths each, no single questions.
    assert state.batches == 3 and all(cls == "Batch" for cls, _ in state.asked)
    assert answers == {p: one_by_one(state, host, File, (), {"path": p}) for p in paths[1:]}
