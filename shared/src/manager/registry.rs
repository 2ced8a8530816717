//! Types of the user's own that a manager's server holds: [`Shared`], registered with
//! [`ManagerBuilder::register`](super::ManagerBuilder::register), reached through a
//! [`SharedProxy`]. Python: `BaseManager.register(typeid, callable)`.
//!
//! Python's server calls any method of a registered class by name, with pickled arguments.
//! Here the type says which calls it takes: a [`Shared::Call`] (an enum of its methods, most
//! often) and a [`Shared::Reply`], both serde types, and one [`Shared::call`] that dispatches.
//! Under spawn the server is a fresh run of the program, so it can make only the types its
//! target names: the registry is a type (a tuple of [`Shared`] types), part of the server's
//! target, never a list built at run time.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::ManagerError;
use super::link::{Link, decode, encode, unexpected};
use super::protocol::{Call, Reply};

/// A type of the user's own that a manager's server can hold. Python: a class registered
/// with `BaseManager.register(typeid, callable)`.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use shared::{Manager, Shared};
///
/// #[derive(Default)]
/// struct Contador(i64);
///
/// #[derive(Serialize, Deserialize)]
/// enum Chamada {
///     Somar(i64),
///     Valor,
/// }
///
/// impl Shared for Contador {
///     const TYPE_ID: &'static str = "Contador";
///     type Call = Chamada;
///     type Reply = i64;
///     fn call(&mut self, call: Chamada) -> i64 {
///         if let Chamada::Somar(n) = call {
///             self.0 += n;
///         }
///         self.0
///     }
/// }
///
/// let manager = Manager::builder().register::<(Contador,)>().start()?;
/// let contador = manager.shared::<Contador>()?;
/// contador.call(&Chamada::Somar(40))?;
/// assert_eq!(contador.call(&Chamada::Somar(2))?, 42);
/// assert_eq!(contador.call(&Chamada::Valor)?, 42);
/// # Ok::<(), shared::ManagerError>(())
/// ```
pub trait Shared: Default + Send + 'static {
    /// The name it is registered by (Python's `typeid`): unique among a registry's types.
    const TYPE_ID: &'static str;
    /// A call: which method, with which arguments (an enum, most often).
    type Call: Serialize + DeserializeOwned;
    /// What a call answers.
    type Reply: Serialize + DeserializeOwned;
    /// Runs one call, in the server, holding the object's lock. Python: the method the
    /// proxy's `_callmethod` names.
    fn call(&mut self, call: Self::Call) -> Self::Reply;
}

/// A registered object as the server holds it: bytes in, bytes out.
pub(crate) trait Served: Send {
    fn call_bytes(&mut self, call: &[u8]) -> Result<ByteBuf, String>;
}

impl<T: Shared> Served for T {
    fn call_bytes(&mut self, call: &[u8]) -> Result<ByteBuf, String> {
        let call = crate::wire::decode(call)
            .map_err(|error| format!("not a call of {}: {error}", T::TYPE_ID))?;
        let reply = self.call(call);
        rmp_serde::to_vec(&reply)
            .map(ByteBuf::from)
            .map_err(|error| format!("the answer of {} does not encode: {error}", T::TYPE_ID))
    }
}

/// The types a manager's server can make: `()` for none, or a tuple of up to four
/// [`Shared`] types.
pub trait Registry: Send + 'static {
    /// A new object of the type registered as `type_id`, if one is.
    #[doc(hidden)]
    #[allow(
        private_interfaces,
        reason = "only the crate's server calls it; users name the trait, never the method"
    )]
    fn make(type_id: &str) -> Option<Box<dyn Served>>;
}

impl Registry for () {
    #[allow(private_interfaces, reason = "see the trait")]
    fn make(_: &str) -> Option<Box<dyn Served>> {
        None
    }
}

macro_rules! impl_registry {
    ($($t:ident),+) => {
        impl<$($t: Shared),+> Registry for ($($t,)+) {
            #[allow(private_interfaces, reason = "see the trait")]
            fn make(type_id: &str) -> Option<Box<dyn Served>> {
                $(
                    if type_id == $t::TYPE_ID {
                        return Some(Box::new($t::default()));
                    }
                )+
                None
            }
        }
    };
}

impl_registry!(A);
impl_registry!(A, B);
impl_registry!(A, B, C);
impl_registry!(A, B, C, D);

/// A proxy of a registered type's object. Python: the proxy `BaseManager.register` makes.
/// Like every proxy it is serializable, for a [`Process`](crate::Process)'s arguments.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SharedProxy<T> {
    link: Link,
    #[serde(skip)]
    types: PhantomData<fn() -> T>,
}

impl<T: Shared> SharedProxy<T> {
    pub(crate) fn new(link: Link) -> SharedProxy<T> {
        SharedProxy {
            link,
            types: PhantomData,
        }
    }

    /// Runs `call` on the object in the server and returns its answer. Python:
    /// `proxy.method(args)`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`] and [`ManagerError::Decode`] for a call or answer that does
    /// not (de)serialize; [`ManagerError::Refused`] when the server's object is not a `T`;
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn call(&self, call: &T::Call) -> Result<T::Reply, ManagerError> {
        match self.link.call(Call::Invoke(encode(call)?))? {
            Reply::Item(answer) => decode(&answer),
            other => Err(unexpected(other)),
        }
    }
}

impl<T> Clone for SharedProxy<T> {
    fn clone(&self) -> Self {
        SharedProxy {
            link: self.link.clone(),
            types: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SharedProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedProxy").field(&self.link).finish()
    }
}
