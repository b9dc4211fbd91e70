"""common.py - shared by the Ansible tests: where things are, and an
environment that keeps ansible's state out of $HOME and the checkout."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
ANSIBLE_DIR = os.path.join(REPO, "ansible")
PLAYBOOKS = ["site.yml", "rolling-update.yml"]
SKIP = 77


def require(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        print("SKIP: %s not installed (Debian packages: ansible ansible-lint)"
              % ", ".join(missing))
        sys.exit(SKIP)


def ansible_env(tmp):
    """Environment for ansible-* commands: no colour, no retry files,
    temporary and cache directories under tmp, no user configuration."""
    cfg = os.path.join(tmp, "ansible.cfg")
    with open(cfg, "w") as f:
        f.write("[defaults]\n"
                "roles_path = %s\n"
                "retry_files_enabled = false\n"
                "nocolor = true\n"
                "interpreter_python = auto_silent\n"
                "local_tmp = %s\n"
                "remote_tmp = %s\n"
                % (os.path.join(ANSIBLE_DIR, "roles"),
                   os.path.join(tmp, "ansible-local"),
                   os.path.join(tmp, "ansible-remote")))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": cfg,
        "ANSIBLE_HOME": os.path.join(tmp, "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "XDG_CACHE_HOME": os.path.join(tmp, "cache"),
        "PY_COLORS": "0",
    })
    return env
