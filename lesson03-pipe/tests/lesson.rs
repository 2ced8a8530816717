//! Lição 03: what the listing guarantees, checked on a fork, a spawn and a forkserver run and the
//! README's sample run.

use lesson_tests::{PID, Transcript};

lesson_tests::check_lesson!("lesson03-pipe", guarantees);
lesson_tests::check_timeline!("lesson03-pipe", guarantees, processes = 2);

#[test]
#[should_panic(expected = "before")]
fn guarantees_catch_an_impossible_order() {
    let stdout = "Processo principal 1 inicializado\nProcesso 2 iniciado\n\
                  Processo principal 1 ouviu: Olá, aqui é o processo 2\n\
                  Processo 2 ouviu: Olá, aqui é o processo principal 1\n\
                  Processo 2 finalizado\nProcesso principal 1 finalizado\n";
    guarantees(&Transcript::parse(
        "main heard before the child",
        stdout.as_bytes(),
    ));
}

/// The README's "Sempre verdadeiro": each message names its sender; the child answers only
/// after it has heard the main process, which prints what it heard after recv() returns and
/// joins the child before its last line.
fn guarantees(t: &Transcript) {
    let main = t.main_pid();
    let child = t.find_one_pid(&format!("Processo {PID} iniciado"));
    t.assert_distinct(&[("main", main), ("child", child)]);
    let inicializado = format!("Processo principal {main} inicializado");
    let finalizado = format!("Processo principal {main} finalizado");
    let iniciado = format!("Processo {child} iniciado");
    let child_heard = format!("Processo {child} ouviu: Olá, aqui é o processo principal {main}");
    let main_heard = format!("Processo principal {main} ouviu: Olá, aqui é o processo {child}");
    let filho_finalizado = format!("Processo {child} finalizado");
    let lines = [
        &inicializado,
        &iniciado,
        &child_heard,
        &filho_finalizado,
        &main_heard,
        &finalizado,
    ];
    t.assert_lines(&lines);
    t.assert_order(&[&iniciado, &child_heard, &filho_finalizado]);
    t.assert_order(&[&child_heard, &main_heard, &finalizado]);
    t.assert_last(&finalizado);
}
