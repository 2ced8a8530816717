//! [`Callbacks`]: Python's `callback` and `error_callback` arguments of the pool's `_async`
//! calls, as one value the `_with` methods take.

use std::fmt;

use super::PoolError;
use super::supervisor::{Deferred, Job, OnComplete};

/// What to call once an `_async` call's result is in: `callback` with the value if every call
/// succeeded, otherwise `error_callback` with the first failure (in input order). Python:
/// `apply_async(f, args, callback=..., error_callback=...)`, and the same arguments of
/// `map_async` and `starmap_async`.
///
/// Exactly one of the two runs, once, in the pool's process, on the pool's supervisor thread
/// (`pool-supervisor`, CPython's result-handler thread), and before the [`AsyncResult`]'s
/// `get` and `wait` return, as in CPython. It runs even if the `AsyncResult` was dropped.
/// Like CPython's, a callback should return quickly: the callbacks run one after another,
/// and while one runs the pool hands out work only from the threads that wait for a result.
/// A panic in a callback is caught (the panic hook prints it); the pool goes on.
///
/// [`AsyncResult`]: crate::AsyncResult
///
/// ```
/// use std::sync::mpsc;
/// use shared::{Callbacks, PoolError};
///
/// fn quadrado(x: u64) -> u64 {
///     x * x
/// }
///
/// fn falha(x: u64) -> Result<u64, String> {
///     Err(format!("{x} não serve"))
/// }
///
/// # shared::set_start_method(shared::StartMethod::Fork);
/// let pool = shared::Pool::new(2)?;
/// let (enviar, receber) = mpsc::channel();
/// let ok = enviar.clone();
/// let resultado = pool.map_async_with(
///     quadrado,
///     1..4,
///     Callbacks::new().callback(move |valores| ok.send(Ok(valores)).unwrap()),
/// )?;
/// assert_eq!(resultado.get()?, [1, 4, 9]);
/// assert_eq!(receber.recv().unwrap(), Ok(vec![1, 4, 9]));
///
/// let resultado = pool.apply_async_with(
///     falha,
///     (7,),
///     Callbacks::new()
///         .callback(|_| unreachable!("the task fails"))
///         .error_callback(move |erro: PoolError| enviar.send(Err(erro.to_string())).unwrap()),
/// )?;
/// assert!(resultado.get().is_err());
/// assert_eq!(
///     receber.recv().unwrap(),
///     Err("the task failed: 7 não serve".to_owned())
/// );
/// # Ok::<(), PoolError>(())
/// ```
pub struct Callbacks<T> {
    callback: Option<Box<dyn FnOnce(T) + Send>>,
    error_callback: Option<Box<dyn FnOnce(PoolError) + Send>>,
}

impl<T: Send + 'static> Callbacks<T> {
    /// No callbacks (what the methods without `_with` use).
    pub fn new() -> Self {
        Callbacks {
            callback: None,
            error_callback: None,
        }
    }

    /// Calls `callback` with the result if every call succeeded. Python: `callback=`.
    pub fn callback(mut self, callback: impl FnOnce(T) + Send + 'static) -> Self {
        self.callback = Some(Box::new(callback));
        self
    }

    /// Calls `error_callback` with the first failure otherwise. Python: `error_callback=`.
    pub fn error_callback(
        mut self,
        error_callback: impl FnOnce(PoolError) + Send + 'static,
    ) -> Self {
        self.error_callback = Some(Box::new(error_callback));
        self
    }

    /// What the supervisor runs once the job is complete: the result is made (`collect`)
    /// under the state's lock, the callback is called after it is released. `None` without
    /// callbacks, so that a call without them costs nothing.
    pub(crate) fn into_on_complete(
        self,
        collect: fn(&Job) -> Result<T, PoolError>,
    ) -> Option<OnComplete> {
        if self.callback.is_none() && self.error_callback.is_none() {
            return None;
        }
        Some(Box::new(move |job: &Job| -> Deferred {
            let result = collect(job);
            Box::new(move || match result {
                Ok(value) => {
                    if let Some(callback) = self.callback {
                        callback(value);
                    }
                }
                Err(error) => {
                    if let Some(error_callback) = self.error_callback {
                        error_callback(error);
                    }
                }
            })
        }))
    }
}

impl<T: Send + 'static> Default for Callbacks<T> {
    fn default() -> Self {
        Callbacks::new()
    }
}

impl<T> fmt::Debug for Callbacks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("callback", &self.callback.is_some())
            .field("error_callback", &self.error_callback.is_some())
            .finish()
    }
}
