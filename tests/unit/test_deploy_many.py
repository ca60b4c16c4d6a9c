"""mailstack deploy PATH...: every system's data checked first, the valid ones
deployed side by side by their own pyinfra, one summary. pyinfra here is a fake
that prints what pyinfra 3.10's --json prints (pyinfra_cli/prints.py) and exits as
told; it records how it was called."""
import json
import sys
import textwrap

import pytest

from mailstack.deploy_many import deploy
from mailstack.lifecycle import ROOT

from .conftest import VALID

FAKE = textwrap.dedent("""\
    #!{python}
    import json, os, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    system = os.path.basename(sys.argv[-2])[:-3]
    with open(os.path.join(here, "calls"), "a") as f:
        f.write(json.dumps({{"system": system, "argv": sys.argv[1:], "cwd": os.getcwd(),
                            "start": time.time()}}) + "\\n")
    run = json.load(open(os.path.join(here, "runs.json")))[system]
    time.sleep(run.get("sleep", 0))
    sys.stderr.write(run.get("stderr", "--> Loading inventory...\\n"))
    if run.get("results"):
        print(json.dumps({{"plan": [], "results": run["results"]}}))
    with open(os.path.join(here, "calls"), "a") as f:
        f.write(json.dumps({{"system": system, "end": time.time()}}) + "\\n")
    sys.exit(run.get("exit", 0))
""")
MX1, MX2 = "mx1.example.org", "mx2.example.org"


def op(name, success=(), no_change=(), error=()):
    hosts = [*success, *no_change, *error]
    return {"op_hash": name, "name": name, "names": [name], "args": [], "hosts": len(hosts),
            "success": sorted(success), "no_change": sorted(no_change), "error": sorted(error)}


def results(ops, failed_hosts=()):
    return {"operations": ops, "totals": {}, "failed_hosts": sorted(failed_hosts)}


# alpha: 3 changes over its 2 hosts; gamma: mx2 stops at "Install packages" (the
# operation after it is listed as an error on mx2 too, never run); delta: no host
# answered, pyinfra gave up before any result.
RUNS = {
    "alpha": {"results": results([op("Update package lists", no_change=[MX1, MX2]),
                                  op("Install packages", success=[MX1, MX2]),
                                  op("Render main.cf", success=[MX1], no_change=[MX2])])},
    "gamma": {"exit": 1, "stderr": "--> Loading inventory...\n[mx2.example.org] Error: apt\n",
              "results": results([op("Update package lists", success=[MX1, MX2]),
                                  op("Install packages", success=[MX1], error=[MX2]),
                                  op("Render main.cf", no_change=[MX1], error=[MX2])], [MX2])},
    "delta": {"exit": 1, "stderr": "--> Connecting to hosts...\n--> pyinfra error: No hosts remaining!\n"},
}


@pytest.fixture
def fake(tmp_path):
    """(the fake pyinfra, the runs it was asked for)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pyinfra = bin_dir / "pyinfra"
    pyinfra.write_text(FAKE.format(python=sys.executable))
    pyinfra.chmod(0o755)
    (bin_dir / "runs.json").write_text(json.dumps(RUNS))

    def calls():
        path = bin_dir / "calls"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return pyinfra, calls


def system(directory, name, data=None):
    """inventory `directory`/<name>.py beside `directory`/<name>/mail.yml."""
    (directory / name).mkdir(parents=True)
    (directory / name / "mail.yml").write_text(data or f"name: {name}\n{VALID}")
    inventory = directory / f"{name}.py"
    inventory.write_text("from pathlib import Path\n\nfrom mailstack.inventory import inventory\n\n"
                         f"globals().update(inventory(Path(__file__).resolve().parent / '{name}' / 'mail.yml'))\n")
    return inventory


@pytest.fixture
def clients(tmp_path):
    """An agency's directory: alpha deploys, beta's data is bad, gamma's pyinfra
    fails on a host, delta's reaches none; notes.py is no mail system."""
    d = tmp_path / "clients"
    for name in ("alpha", "gamma", "delta"):
        system(d, name)
    system(d, "beta", f"name: beta\n{VALID}".replace("quota: 2G", "quota: lots"))
    (d / "notes.py").write_text("# not an inventory\n")
    return d


def run(capsys, *args, **kw):
    with pytest.raises(SystemExit) as e:
        deploy(*args, **kw)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_a_directory_deploys_each_valid_system_and_summarizes_all(fake, clients, capsys):
    pyinfra, calls = fake
    code, out, err = run(capsys, [str(clients)], pyinfra=pyinfra)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["system", "hosts", "changes", "errors", "time", "s", "status"]
    # By name; a time for each run (the fake is quick), none for beta (never run).
    rows = {line.split()[0]: line.split()[1:4] + line.split()[5:] for line in lines[1:5]}
    assert list(rows) == ["alpha", "beta", "delta", "gamma"]
    assert rows == {"alpha": ["2", "3", "0", "ok"], "beta": ["-", "-", "-", "failed"],
                    "delta": ["2", "-", "-", "failed"], "gamma": ["2", "3", "1", "failed"]}
    assert lines[1].split()[4] == "0" and lines[2].split()[4] == "-"
    assert lines[5] == ""
    messages = lines[6:]
    assert messages[0] == (f"beta: invalid mail data: {clients}/beta/mail.yml: "
                           "mailboxes[1].quota: 'lots' is not a size (use a number with K, M, G or T, e.g. 10G)")
    assert messages[1] == (f"delta: pyinfra exited 1: --> pyinfra error: No hosts remaining! "
                           f"(log: {clients}/logs/delta.log)")
    assert messages[2] == f"gamma: mx2.example.org: Install packages (log: {clients}/logs/gamma.log)"
    assert f"{clients}/notes.py: skipped, no data file at {clients}/notes/mail.yml" in err
    assert f"alpha: deploying (log: {clients}/logs/alpha.log)" in err


def test_bad_data_is_never_deployed_and_the_others_still_are(fake, clients, capsys):
    pyinfra, calls = fake
    run(capsys, [str(clients)], pyinfra=pyinfra)
    started = [c for c in calls() if "argv" in c]
    assert sorted(c["system"] for c in started) == ["alpha", "delta", "gamma"]
    for c in started:
        assert c["argv"] == ["-y", "--json", str(clients / f"{c['system']}.py"), "deploy.py"]
        assert c["cwd"] == str(ROOT) and (ROOT / "deploy.py").is_file()


def test_each_run_is_logged_beside_its_inventory(fake, clients, capsys):
    run(capsys, [str(clients)], pyinfra=fake[0])
    log = (clients / "logs" / "gamma.log").read_text()
    assert log.startswith(f"$ {fake[0]} -y --json {clients}/gamma.py deploy.py\n")
    assert "[mx2.example.org] Error: apt" in log and '"failed_hosts": ["mx2.example.org"]' in log
    assert not (clients / "logs" / "beta.log").exists()


def test_all_deployed_exits_0(fake, clients, capsys):
    code, out, _ = run(capsys, [str(clients / "alpha.py")], pyinfra=fake[0])
    assert code == 0
    assert out.splitlines()[1].split()[-1] == "ok" and len(out.splitlines()) == 2


def test_json_gives_the_same_summary(fake, clients, capsys):
    code, out, _ = run(capsys, [str(clients / "gamma.py"), str(clients / "beta.py"),
                                str(clients / "alpha.py")], as_json=True, pyinfra=fake[0])
    assert code == 1
    summary = json.loads(out)
    assert summary["ok"] is False and summary["skipped"] == []
    rows = {r["system"]: r for r in summary["systems"]}
    assert [r["system"] for r in summary["systems"]] == ["gamma", "beta", "alpha"]   # as given
    assert {k: rows["alpha"][k] for k in ("hosts", "changes", "errors", "status", "message")} == \
        {"hosts": 2, "changes": 3, "errors": 0, "status": "ok", "message": None}
    assert rows["alpha"]["log"] == f"{clients}/logs/alpha.log" and rows["alpha"]["seconds"] >= 0
    assert rows["gamma"]["errors"] == 1 and rows["gamma"]["message"] == "mx2.example.org: Install packages"
    assert rows["beta"]["status"] == "failed" and rows["beta"]["seconds"] is None
    assert "mailboxes[1].quota: 'lots'" in rows["beta"]["message"]


def test_systems_run_side_by_side_up_to_parallel(fake, tmp_path, capsys):
    runs = json.loads((fake[0].parent / "runs.json").read_text())
    d = tmp_path / "many"
    for name in ("one", "two", "three"):
        system(d, name)
        runs[name] = {"sleep": 0.5, "results": results([op("Install packages", no_change=[MX1])])}
    (fake[0].parent / "runs.json").write_text(json.dumps(runs))

    def spans():
        calls = fake[1]()
        starts = {c["system"]: c["start"] for c in calls if "start" in c}
        spans = sorted((starts[c["system"]], c["end"]) for c in calls if "end" in c)
        (fake[0].parent / "calls").unlink()
        return spans
    assert run(capsys, [str(d)], parallel=1, pyinfra=fake[0])[0] == 0
    one_by_one = spans()
    assert all(end <= next_start for (_, end), (next_start, _) in zip(one_by_one, one_by_one[1:]))
    run(capsys, [str(d)], parallel=3, pyinfra=fake[0])
    together = spans()
    assert together[-1][0] < together[0][1]   # the last began before the first ended


def test_one_system_named_twice_is_deployed_once_and_a_name_shared_is_refused(fake, clients, capsys):
    system(clients / "more", "alpha-copy", f"name: alpha\n{VALID}")
    code, out, _ = run(capsys, [str(clients / "alpha.py"), str(clients / "alpha.py"),
                                str(clients / "more" / "alpha-copy.py")], pyinfra=fake[0])
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()[1:3]] == ["alpha", "alpha-copy"]
    assert f"name: 'alpha' is also the system of {clients}/alpha.py" in out
    assert len([c for c in fake[1]() if "argv" in c]) == 1


def test_nothing_to_deploy_exits_1(fake, tmp_path, capsys):
    code, _, err = run(capsys, [str(tmp_path)], pyinfra=fake[0])
    assert code == "mailstack: no mail system to deploy (inventory/<system>.py beside " \
                   "inventory/<system>/mail.yml)"
    code, out, _ = run(capsys, [str(tmp_path / "missing.py")], pyinfra=fake[0])
    assert code == 1 and f"missing: {tmp_path}/missing.py: no such file" in out


def test_hosts_that_do_not_answer_are_named(tmp_path, fake, capsys):
    pyinfra, _ = fake
    (pyinfra.parent / "runs.json").write_text(json.dumps({"epsilon": {"exit": 1, "stderr": (
        "--> Connecting to hosts...\n"
        f"    [{MX2}]   Could not connect ([Errno None] Unable to connect to port 22 on 192.0.2.11)\n"
        f"    [{MX1}]   Could not connect ([Errno None] Unable to connect to port 22 on 192.0.2.10)\n"
        "--> pyinfra error: No hosts remaining!\n")}}))
    inventory = system(tmp_path, "epsilon")
    code, out, _ = run(capsys, [str(inventory)], pyinfra=pyinfra)
    assert code == 1
    assert out.splitlines()[-1] == (f"epsilon: could not connect to {MX1}, {MX2} "
                                    f"(log: {tmp_path}/logs/epsilon.log)")
