//! Lição 04: what the two listings guarantee, each checked on a fork, a spawn and a forkserver run
//! and the README's sample run. A run also checks that the daemon worker, which loops forever, is
//! gone once the main process exits. The threads binary starts no process, so `--start-method` has
//! no effect on it, but each of its runs must pass all the same.

use lesson_tests::{PID, Transcript};

mod processes {
    lesson_tests::check_lesson!("lesson04-joinable", super::process_guarantees);
    lesson_tests::check_timeline!(
        "lesson04-joinable",
        super::process_guarantees,
        processes = 2
    );
}

mod threads {
    lesson_tests::check_lesson!("lesson04-joinable-threads", super::thread_guarantees);
    lesson_tests::check_timeline!(
        "lesson04-joinable-threads",
        super::thread_guarantees,
        processes = 1
    );
}

/// `lesson04-joinable`, the README's "Sempre verdadeiro": the whole order is forced. The queue
/// is full (maxsize 3) before start(); one worker process takes the tasks in FIFO order;
/// join() returns after the last task_done(); the worker counted in its own copy of the
/// counter, so the main process reads 0.
fn process_guarantees(t: &Transcript) {
    let main = t.main_pid();
    let worker = t.find_one_pid(&format!("Processo {PID} iniciado"));
    t.assert_distinct(&[("main", main), ("worker", worker)]);
    let lines = [
        format!("Processo principal {main} inicializado"),
        "qsize(): 3 empty(): False full(): True".to_owned(),
        format!("Processo {worker} iniciado"),
        format!("Processo {worker} concluiu: Tarefa 1"),
        format!("Processo {worker} concluiu: Tarefa 2"),
        format!("Processo {worker} concluiu: Tarefa 3"),
        "qsize(): 0 empty(): True full(): False".to_owned(),
        "Tarefas concluídas, segundo o principal: 0".to_owned(),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}

/// `lesson04-joinable-threads`: the same order, forced the same way. The worker is a thread
/// of the main process (its PID is the main's, its thread id is not the main thread's, which
/// equals the PID), and it counted in the memory the main thread reads, so the count is 3.
fn thread_guarantees(t: &Transcript) {
    let main = t.main_pid();
    let started = t.find(&format!("Thread {PID} do processo {PID} iniciada"));
    let (tid, pid) = match started.as_slice() {
        [found] => (found.pids[0], found.pids[1]),
        _ => t.fail("expected one line `Thread T do processo P iniciada`"),
    };
    if pid != main {
        t.fail(&format!(
            "the worker thread names process {pid}, not {main}"
        ));
    }
    t.assert_distinct(&[("main thread", main), ("worker thread", tid)]);
    let lines = [
        format!("Processo principal {main} inicializado"),
        "qsize(): 3 empty(): False full(): True".to_owned(),
        format!("Thread {tid} do processo {main} iniciada"),
        format!("Thread {tid} concluiu: Tarefa 1"),
        format!("Thread {tid} concluiu: Tarefa 2"),
        format!("Thread {tid} concluiu: Tarefa 3"),
        "qsize(): 0 empty(): True full(): False".to_owned(),
        "Tarefas concluídas, segundo o principal: 3".to_owned(),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}
