//! Lição 07: what the listing guarantees, checked on a fork, a spawn and a forkserver run and the
//! README's sample run.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson07-shared-memory", guarantees);
lesson_tests::check_timeline!("lesson07-shared-memory", guarantees, processes = 2);

/// The README's "Sempre verdadeiro": the child that wrote is not the main process; the size
/// it printed is the UTF-8 length of its message; the main process reads, after `join()`,
/// exactly the message that child wrote (its own PID in it); four lines, in this order.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    // `[PID]` stands for any number in a pattern: here the child's PID, then the size.
    let filho = match t
        .find(&format!("Processo {PID} escreveu {PID} bytes"))
        .as_slice()
    {
        [found] => found.pids[0],
        _ => t.fail("expected one line `Processo C escreveu N bytes`"),
    };
    t.assert_distinct(&[("main", main), ("child", filho)]);
    let mensagem = format!("Olá do processo {filho}");
    let lines = [
        format!("Processo principal {main} inicializado"),
        format!("Processo {filho} escreveu {} bytes", mensagem.len()),
        format!("Mensagem lida: {mensagem}"),
        format!("Processo principal {main} finalizado"),
    ];
    t.assert_lines(&lines);
    t.assert_order(&lines);
}
