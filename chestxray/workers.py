"""The grader's sandboxed workers, seen from the grader: bubblewrap's command, the students'
cgroups, and one worker's protocol (`sandbox.py` is the other side).

A worker is started once per job slot and grades phase after phase: `Worker.phase(key, cell,
inputs, timeout, memory_mb)` sends the cell, then one case's inputs at a time, and returns the
student's lines as text, or why the student's process stopped. A worker that stops following
the protocol raises `WorkerFailed` (the grader replaces it); one that cannot start raises
`SandboxUnavailable`, saying why.
"""

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STOP_REASONS = ("timeout", "exited", "memory", "too_large")  # what the supervisor says when no answer came
# The students' user ids: a base drawn at random per grading run, + 100,000 x worker + a counter
# (one per phase), far above any account's id on the host. Two graders on one machine then
# almost never share an id: a user id's process limit counts across the whole machine.
UID_SPACE = (1_000_000, 2_000_000_000)
IDS_PER_WORKER = 100_000
MAX_PROCESSES = 256  # per phase: TensorFlow's threads count as processes
CONTROLLERS = ("memory", "pids", "cpu")


class SandboxUnavailable(PermissionError):
    """No sandbox can be made here; `grade` refuses unless told to run without one."""


class WorkerFailed(RuntimeError):
    """A worker stopped answering as the protocol says: it is replaced."""


# ----------------------------------------------------------------------------
# The sandbox.

def python_roots():
    """Folders the Python environment needs, read-only in the sandbox: its prefixes (a
    virtualenv's and its base interpreter's), the interpreter's own folder, site-packages."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    roots |= {sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}  # the venv as named, and its link's target
    roots |= {path for path in map(os.path.realpath, filter(None, sys.path))
              if path.endswith(("site-packages", "dist-packages"))}
    roots = {r for r in roots if os.path.isdir(r) and r != "/"}
    return sorted(r for r in roots if not any(r.startswith(o + os.sep) for o in roots if o != r))


def uid_base(jobs):
    """The first user id of a grading run with `jobs` workers, drawn from UID_SPACE."""
    span = IDS_PER_WORKER * jobs
    return UID_SPACE[0] + secrets.randbelow((UID_SPACE[1] - UID_SPACE[0]) // span) * span


def scratch_root(roots):
    """A top-level folder for the worker's files that hides none of `roots` (a Python under
    /work or /sandbox stays visible)."""
    name = "/sandbox"
    while any(r == name or r.startswith(name + os.sep) for r in roots) or os.path.islink(name):
        name = f"/sandbox-{secrets.token_hex(3)}"
    return name


def _ancestors(path):
    """/a, /a/b for /a/b/c: made 0755 in the sandbox (bubblewrap copies the host's modes, and a
    Python under /root, 0700, would be unreadable to the students' user ids)."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def sandbox_command(slot, base, cgroups=()):
    """bubblewrap around `sandbox.py`: no network, own process tree, only the Python environment
    and the worker's two files visible (read-only), a scratch tmpfs, the worker's cgroups."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")
    roots = python_roots()
    command = [bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            command += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(f"/{link}"):
            command += ["--ro-bind", f"/{link}", f"/{link}"]
    made = set()
    for root in roots:
        if root.startswith("/usr/"):
            continue
        for folder in _ancestors(root):
            if folder not in made and folder not in ("/usr", "/bin", "/lib", "/lib64", "/sbin"):
                command += ["--perms", "0755", "--dir", folder]
                made.add(folder)
        command += ["--ro-bind", root, root]
    scratch = scratch_root(roots)  # after the read-only roots
    command += ["--tmpfs", scratch, "--dir", f"{scratch}/scratch",
                "--ro-bind", os.path.join(HERE, "sandbox.py"), f"{scratch}/grader/sandbox.py",
                "--ro-bind", os.path.join(HERE, "exercise_calls.py"), f"{scratch}/grader/exercise_calls.py",
                "--proc", "/proc", "--dev", "/dev", "--cap-drop", "ALL"]
    inside = []
    for controller, folder in cgroups:
        inside.append(f"/sys/fs/cgroup/{controller}")
        command += ["--bind", folder, inside[-1]]
    # The worker keeps what it needs to give each student a user id, namespaces, a scratch tmpfs
    # and cgroups of their own, and to clean up after. Students' processes lose all of it.
    for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                "CAP_SYS_ADMIN"):
        command += ["--cap-add", cap]
    config = {"uid_base": base + IDS_PER_WORKER * slot, "scratch": f"{scratch}/scratch", "scratch_mb": 256,
              "cgroups": inside, "unconfined": False, "max_processes": MAX_PROCESSES}
    command += ["--clearenv", "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", scratch,
                "--setenv", "KERAS_BACKEND", "tensorflow", "--setenv", "TF_CPP_MIN_LOG_LEVEL", "3",
                "--setenv", "MPLBACKEND", "Agg", "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--chdir", scratch,
                sys.executable, "-I", f"{scratch}/grader/sandbox.py", json.dumps(config)]
    return command, roots


def check_sandbox():
    """Why no sandbox can be made here, as an exception; nothing if one can."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the sandbox needs Linux namespaces (bubblewrap); this is {sys.platform}")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox gives each student a user id of its own, which needs root: "
                                 "run the grader as root (or in a container where it is root)")
    command, _ = sandbox_command(0, UID_SPACE[0])
    probe = command[:command.index(sys.executable)] + ["/usr/bin/true"]
    done = subprocess.run(probe, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot make a sandbox here: {done.stderr.strip()}")


class Cgroups:
    """One cgroup per worker in each of the memory, pids and cpu controllers (cgroup v1, under this
    process's own); the worker makes one per phase inside it. Where none can be made, `folders`
    is empty and `why` says why: limits are then per process and per user id only."""

    def __init__(self, jobs):
        self.run, self.folders, self.why = [], [[] for _ in range(jobs)], ""
        try:
            own = self._own()
            missing = [c for c in CONTROLLERS if c not in own]
            if missing:
                raise OSError(f"no cgroup v1 hierarchy for {', '.join(missing)}")
            name = f"chestxray-grade-{os.getpid()}-{secrets.token_hex(3)}"
            self._remove_stale(own)
            for controller in CONTROLLERS:
                self.run.append(os.path.join(own[controller], name))
                os.mkdir(self.run[-1])
                for slot in range(jobs):
                    os.mkdir(os.path.join(self.run[-1], f"w{slot}"))
                    self.folders[slot].append((controller, os.path.join(self.run[-1], f"w{slot}")))
        except OSError as error:
            self.close()
            self.folders, self.why = [[] for _ in range(jobs)], str(error)

    @staticmethod
    def _own():
        """{controller: this process's cgroup folder} for the v1 controllers mounted here."""
        mounts = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                tail = fields[fields.index("-") + 1:]
                if tail[0] == "cgroup" and os.access(fields[4], os.W_OK):
                    for option in tail[2].split(","):
                        mounts[option] = (fields[4], fields[3])  # mount point, the hierarchy's folder it shows
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                for controller in names.split(","):
                    if controller in mounts:
                        point, root = mounts[controller]
                        relative = os.path.relpath(path, root) if path.startswith(root) else "."
                        own[controller] = os.path.normpath(os.path.join(point, relative))
        return own

    def _remove_stale(self, own):
        """Folders a killed grading run left behind (its process is gone): removed when empty."""
        for controller in CONTROLLERS:
            for entry in os.listdir(own[controller]):
                pid = entry.split("-")[2] if entry.startswith("chestxray-grade-") else ""
                if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                    for folder in _deepest_first(os.path.join(own[controller], entry)):
                        try:
                            os.rmdir(folder)
                        except OSError:
                            pass

    def close(self):
        """Kill whatever is left in the run's cgroups, and remove them."""
        for top in self.run:
            for folder in _deepest_first(top):
                try:
                    with open(os.path.join(folder, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
                for _ in range(200):
                    try:
                        os.rmdir(folder)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.01)


def _deepest_first(top):
    """`top` and the folders below it, each before its parent (a cgroup is removed leaves first)."""
    return sorted((folder for folder, _, _ in os.walk(top)), key=len, reverse=True)


class Worker:
    """One sandboxed worker (a zygote): phases in, the student's lines and the supervisor's word out."""

    def __init__(self, slot, base, sandbox=True, cgroups=(), start_seconds=300):
        self.log = tempfile.TemporaryFile()
        if sandbox:
            command, roots = sandbox_command(slot, base, cgroups)
            env = None
        else:  # --no-sandbox: the same worker, unconfined (students' code can reach everything)
            roots = ["(no sandbox)"]
            config = {"uid_base": base + IDS_PER_WORKER * slot, "scratch": "", "scratch_mb": 0, "cgroups": [],
                      "unconfined": True, "max_processes": MAX_PROCESSES}
            command = [sys.executable, "-I", os.path.join(HERE, "sandbox.py"), json.dumps(config)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        env=env, bufsize=0)
        self.buffer = b""
        try:
            ready = self._read(start_seconds)
        except WorkerFailed as error:
            self.kill()
            raise SandboxUnavailable(self._why_not_started(error, roots)) from None
        if ready.get("prefix") != sys.prefix:
            self.kill()
            raise SandboxUnavailable(f"the sandbox runs another Python environment: {ready.get('prefix')!r}, "
                                     f"not the grader's {sys.prefix!r} ({sys.executable})")

    def _why_not_started(self, error, roots):
        self.log.seek(0)
        lines = self.log.read().decode("utf-8", "replace").strip().splitlines()[-15:]
        return (f"the grading worker did not start ({error}); interpreter {sys.executable} "
                f"(prefix {sys.prefix}); read-only in the sandbox: {', '.join(roots)}; its last lines:\n"
                + ("\n".join("  " + line for line in lines) or "  (nothing)"))

    def _read(self, seconds):
        """The worker's next line, as data; WorkerFailed when it ends, stalls or says nonsense."""
        deadline = time.monotonic() + seconds
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerFailed(f"no answer in {seconds:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerFailed(f"it exited (status {self.process.wait()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            raise WorkerFailed("it wrote a line that is not JSON") from None
        if not isinstance(message, dict):
            raise WorkerFailed("it wrote a line that is not an object")
        return message

    def _send(self, text):
        try:
            self.process.stdin.write((text + "\n").encode())
        except OSError as error:
            raise WorkerFailed(f"it stopped reading ({error})") from None

    def phase(self, key, cell, inputs, timeout, memory_mb):
        """The student's process's first line (defining the function) and one line per case, each
        {"student": text} or {"stopped": why}."""
        self._send(json.dumps({"key": key, "cell": cell, "n": len(inputs), "timeout": timeout,
                               "memory_mb": memory_mb}))
        patience = timeout + 30  # the supervisor enforces `timeout`; this only catches a stuck worker
        replies = [self._expect(patience)]
        for case in inputs:
            self._send(json.dumps(case))
            replies.append(self._expect(patience))
        if not self._read(patience).get("end"):
            raise WorkerFailed("it did not end the phase")
        return replies[0], replies[1:]

    def _expect(self, seconds):
        reply = self._read(seconds)
        if not (isinstance(reply.get("student"), str) or reply.get("stopped") in STOP_REASONS):
            raise WorkerFailed(reply.get("error") or "it broke the protocol")
        return reply

    def close(self):
        try:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.log.close()

    def kill(self):
        self.process.kill()  # bubblewrap's init: every process of its namespace goes with it
        self.process.wait()
