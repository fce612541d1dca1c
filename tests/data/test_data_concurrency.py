"""Several processes preparing the same dataset at once (issue 12, defect 4): one prepares, the others
wait for it and use its folder; nobody crashes. The prepared folder follows the umask (defect 8)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Each process counts its own preparation in a shared file and holds its build open for 2 s, so that all
# three are running before the first one finishes (without a lock every one of them prepares).
DRIVER = textwrap.dedent("""
    import dataclasses, sys, time
    from utilabel.cli.main import main
    from utilabel.data import registry

    spec = registry.get_spec("scifact")

    def prepare(source, out):
        with open(sys.argv[1], "a") as fh:
            fh.write("prepared\\n")
        meta = spec.prepare(source, out)
        time.sleep(2)
        return meta

    registry._REGISTRY["scifact"] = dataclasses.replace(spec, prepare=prepare)
    sys.exit(main(["data", "info", "scifact"]))
""")


def test_three_processes_prepare_once(tmp_path, mirror):
    home, counter = tmp_path / "home", tmp_path / "count.txt"
    env = {**os.environ, "UTILABEL_DATA_HOME": str(home), "UTILABEL_SOURCE_MIRROR": str(mirror)}
    old = os.umask(0o022)
    try:
        procs = [subprocess.Popen([sys.executable, "-c", DRIVER, str(counter)], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        os.umask(old)
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert "docs                   5,183" in out
    assert counter.read_text().count("prepared") == 1
    datasets = home / "datasets"
    assert sorted(p.name for p in datasets.iterdir()) == [".scifact.lock", "scifact"]  # no temp folder left
    assert (datasets / "scifact").stat().st_mode & 0o777 == 0o755
    assert (datasets / "scifact" / "utilabel.json").stat().st_mode & 0o777 == 0o644
