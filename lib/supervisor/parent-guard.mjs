// Loaded with `node --import` into every Node program the supervisor (or the
// standalone health checker) starts: the second line behind the kernel's
// parent-death signal (setpriv --pdeathsig), for the cases it cannot cover:
// a parent that died before setpriv set the signal, and a sudo in between
// (a set-user-id exec clears the signal).
//
// NATFARM_PARENT_PID names the process this one must not outlive. It is
// removed from the environment here so that processes this one starts watch
// their own parent instead. When the parent is gone (or this process was
// re-parented), it sends itself SIGTERM so the program's own shutdown runs,
// and exits for good 5 s later.
import process from "node:process";

const named = Number(process.env.NATFARM_PARENT_PID);
delete process.env.NATFARM_PARENT_PID;
const parent = Number.isInteger(named) && named > 1 ? named : process.ppid;
const firstPpid = process.ppid;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

function orphaned() {
  return process.ppid !== firstPpid || !alive(parent);
}

function leave() {
  process.stderr.write(`natfarm: parent process ${parent} is gone: ${process.pid} ends too\n`);
  setTimeout(() => process.exit(1), 5000).unref();
  process.kill(process.pid, "SIGTERM");
}

if (orphaned()) {
  leave();
} else {
  const timer = setInterval(() => {
    if (!orphaned()) return;
    clearInterval(timer);
    leave();
  }, 500);
  timer.unref();
}
