//! Helpers shared by the integration tests of `shared`.

/// Generates `fork::NAME` and `spawn::NAME` tests that call `NAME(StartMethod::...)`.
macro_rules! under_both_start_methods {
    ($($name:ident),* $(,)?) => {
        mod fork {
            $(
                #[test]
                fn $name() {
                    super::$name(shared::StartMethod::Fork);
                }
            )*
        }
        mod spawn {
            $(
                #[test]
                fn $name() {
                    super::$name(shared::StartMethod::Spawn);
                }
            )*
        }
    };
}
