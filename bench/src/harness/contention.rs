//! The contention mode: `--cpus N` runs both sides on the same N CPUs, `--busy K` runs K busy
//! processes beside them for the whole run. A user's machine is rarely quiet (a container with
//! one CPU, a CI runner sharing its cores), and a lead that exists only on an idle machine is
//! not one.
//!
//! Pinning narrows the harness's own affinity before it starts anything: every workload
//! process, Python or Rust, every child they start and every busy process inherit it. The busy
//! processes are this executable run as `bench busy PARENT_PID`: a spin loop at normal
//! priority that the kernel kills when the harness dies (`PR_SET_PDEATHSIG`), and that
//! [`Busy`]'s drop kills otherwise, so none outlives the run, on a panic or a Ctrl-C either
//! (the terminal sends SIGINT to the whole process group).

use std::fmt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The subcommand a busy process runs.
pub const BUSY_COMMAND: &str = "busy";

/// How the run was loaded: the CPUs it was pinned to, and the busy processes beside it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contention {
    /// `--cpus N`: pin everything to N CPUs.
    pub cpus: Option<usize>,
    /// `--busy K`: K busy processes.
    pub busy: usize,
}

impl Contention {
    /// Pins this process to the last `cpus` CPUs it may use, if asked, and returns them.
    ///
    /// # Errors
    /// Fewer CPUs allowed than asked for; the affinity cannot be read or set.
    pub fn pin(&self) -> Result<Option<Vec<usize>>, String> {
        let Some(count) = self.cpus else {
            return Ok(None);
        };
        let me = Pid::from_raw(0);
        let allowed = sched_getaffinity(me).map_err(|e| format!("cannot read affinity: {e}"))?;
        let mut chosen: Vec<usize> = (0..CpuSet::count())
            .rev()
            .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
            .take(count)
            .collect();
        if chosen.len() < count {
            return Err(format!(
                "--cpus {count}: this process may use only {} CPU(s)",
                chosen.len()
            ));
        }
        chosen.reverse();
        let mut set = CpuSet::new();
        for &cpu in &chosen {
            set.set(cpu).map_err(|e| e.to_string())?;
        }
        sched_setaffinity(me, &set).map_err(|e| format!("cannot pin to {chosen:?}: {e}"))?;
        Ok(Some(chosen))
    }

    /// Starts the busy processes (after [`pin`](Self::pin), so that they share its CPUs).
    ///
    /// # Errors
    /// A busy process could not start; those already started are killed.
    pub fn start_busy(&self, executable: &Path) -> Result<Busy, String> {
        let mut busy = Busy(Vec::new());
        let parent = std::process::id().to_string();
        for _ in 0..self.busy {
            let child = Command::new(executable)
                .args([BUSY_COMMAND, &parent])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start a busy process: {e}"))?;
            busy.0.push(child);
        }
        Ok(busy)
    }
}

/// What the report says about the mode, e.g. `pinned to CPU 1 (--cpus 1), 1 busy process
/// (--busy 1)`, or `quiet: unpinned, no busy process`.
pub fn describe(pinned_to: Option<&[usize]>, busy: usize) -> String {
    let cpus = match pinned_to {
        None => "unpinned".to_owned(),
        Some(cpus) => format!(
            "pinned to CPU{} {} (--cpus {})",
            if cpus.len() == 1 { "" } else { "s" },
            cpus.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
            cpus.len()
        ),
    };
    let load = match busy {
        0 => "no busy process".to_owned(),
        1 => "1 busy process at normal priority (--busy 1)".to_owned(),
        k => format!("{k} busy processes at normal priority (--busy {k})"),
    };
    let quiet = if pinned_to.is_none() && busy == 0 {
        "quiet mode: "
    } else {
        "contention mode: "
    };
    format!("{quiet}{cpus}, {load}")
}

/// The busy processes of a run; killed and reaped on drop.
pub struct Busy(Vec<Child>);

impl fmt::Debug for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pids: Vec<u32> = self.0.iter().map(Child::id).collect();
        write!(f, "Busy({pids:?})")
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The busy process's body: spins until killed, or at once returns if `parent` is not (or no
/// longer) its parent, so that it never outlives the harness.
///
/// # Errors
/// A bad argument, or the death signal cannot be set.
pub fn run_busy(args: &[String]) -> Result<(), String> {
    let parent: i32 = args
        .first()
        .and_then(|pid| pid.parse().ok())
        .ok_or("usage: bench busy PARENT_PID")?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    // The parent may have died before the signal was set: then nobody would kill us.
    if nix::unistd::getppid().as_raw() != parent {
        return Ok(());
    }
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_described() {
        assert_eq!(describe(None, 0), "quiet mode: unpinned, no busy process");
        assert_eq!(
            describe(Some(&[1]), 1),
            "contention mode: pinned to CPU 1 (--cpus 1), 1 busy process at normal priority \
             (--busy 1)"
        );
        assert_eq!(
            describe(Some(&[0, 1]), 2),
            "contention mode: pinned to CPUs 0,1 (--cpus 2), 2 busy processes at normal \
             priority (--busy 2)"
        );
    }

    #[test]
    fn asking_for_more_cpus_than_allowed_is_refused() {
        let contention = Contention {
            cpus: Some(CpuSet::count() + 1),
            busy: 0,
        };
        assert!(contention.pin().unwrap_err().contains("may use only"));
    }
}
