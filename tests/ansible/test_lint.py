"""ansible/ is well-formed: every playbook passes
`ansible-playbook --syntax-check` against the example inventory, the
example inventory parses, and `ansible-lint` (its production profile,
offline: no Galaxy) reports nothing."""
import json
import os
import subprocess
import sys
import tempfile
import shutil

from common import ANSIBLE_DIR, PLAYBOOKS, ansible_env, require


def run(argv, env, what):
    r = subprocess.run(argv, cwd=ANSIBLE_DIR, env=env, capture_output=True,
                       text=True, timeout=150)
    if r.returncode != 0:
        sys.stderr.write("%s failed (%d):\n%s%s" % (what, r.returncode,
                                                    r.stdout, r.stderr))
        raise SystemExit(1)
    return r


def main():
    require("ansible-playbook", "ansible-inventory", "ansible-lint")
    tmp = tempfile.mkdtemp(prefix="sluice-ansible-lint-")
    try:
        env = ansible_env(tmp)
        inv = os.path.join(ANSIBLE_DIR, "inventory", "example")
        found = sorted(f for f in os.listdir(ANSIBLE_DIR)
                       if f.endswith(".yml"))
        assert found == sorted(PLAYBOOKS), (
            "playbooks in ansible/ changed: %s (update PLAYBOOKS)" % found)
        for pb in PLAYBOOKS:
            run(["ansible-playbook", "-i", inv, "--syntax-check", pb], env,
                "syntax check of %s" % pb)
        groups = json.loads(run(["ansible-inventory", "-i", inv, "--list"],
                                env, "example inventory").stdout)
        for g in ("sluice_db", "sluice_controllers", "sluice_nodes"):
            assert groups.get(g, {}).get("hosts"), (g, groups.keys())
        # Offline: .ansible-lint says so too; the flag keeps it certain.
        r = run(["ansible-lint", "--offline", "--nocolor", "-p"], env,
                "ansible-lint")
        assert "failure" not in r.stdout, r.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d playbooks checked, ansible-lint clean; 1 passed, 0 failed"
          % len(PLAYBOOKS))


if __name__ == "__main__":
    main()
