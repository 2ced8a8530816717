//! The proxies: handles to objects held by a manager's server, one type per kind of object.
//! Python: `multiprocessing.managers.DictProxy`, `ListProxy`, `AcquirerProxy`, ...
//!
//! A proxy is `Send`, serializable and cheap to clone: pass it to a child in a
//! [`Process`](crate::Process)'s arguments under any start method, or clone it for another
//! thread. Each copy opens its own connection to the server on first use; every method is
//! one request and one answer on it.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ManagerError;
use super::codec::{self, Answer};
use super::link::{Link, decode, encode, unexpected};
use super::protocol::{Call, Kind, Reply};

pub(crate) mod sealed {
    use super::{Kind, Link};

    /// How a manager makes a proxy of each kind.
    #[allow(
        private_interfaces,
        reason = "sealed: no code outside the crate can name or call these"
    )]
    pub trait Proxy {
        /// The kind of object this proxies.
        fn kind() -> Kind;
        fn from_link(link: Link) -> Self;
        fn link(&self) -> &Link;
    }
}

/// A proxy type: [`Manager::named`](super::Manager::named) makes one of any of them.
pub trait Proxied: sealed::Proxy {}

macro_rules! proxy {
    ($(#[$doc:meta])* $name:ident $(<$($param:ident),+>)?, $kind:ident) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        #[serde(bound = "")]
        pub struct $name$(<$($param),+>)? {
            link: Link,
            #[serde(skip)]
            types: PhantomData<fn() -> ($($($param,)+)?)>,
        }

        #[allow(
            private_interfaces,
            reason = "sealed: no code outside the crate can name or call these"
        )]
        impl$(<$($param),+>)? sealed::Proxy for $name$(<$($param),+>)? {
            fn kind() -> Kind {
                Kind::$kind
            }
            fn from_link(link: Link) -> Self {
                $name { link, types: PhantomData }
            }
            fn link(&self) -> &Link {
                &self.link
            }
        }

        impl$(<$($param),+>)? Proxied for $name$(<$($param),+>)? {}

        impl$(<$($param),+>)? Clone for $name$(<$($param),+>)? {
            fn clone(&self) -> Self {
                $name { link: self.link.clone(), types: PhantomData }
            }
        }

        impl$(<$($param),+>)? std::fmt::Debug for $name$(<$($param),+>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.link).finish()
            }
        }
    };
}

/// The reply a method expects, or an error naming what came instead.
macro_rules! expect {
    ($reply:expr, $pattern:pat => $value:expr) => {
        match $reply {
            $pattern => Ok($value),
            other => Err(unexpected(other)),
        }
    };
}

proxy!(
    /// A `dict` held by a manager, with keys `K` and values `V`. Python: `Manager().dict()`
    /// (a `DictProxy`).
    ///
    /// Beyond Python's methods, [`get_many`](Self::get_many) and [`update`](Self::update)
    /// carry many keys in one request: one round trip to the server instead of one per key.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let d = manager.dict::<String, i32>()?;
    /// d.set(&"um".into(), &1)?;
    /// d.update([("dois".to_owned(), 2), ("três".to_owned(), 3)])?;
    /// assert_eq!(d.get(&"dois".into())?, Some(2));
    /// assert_eq!(d.get_many(&["um".into(), "zero".into()])?, [Some(1), None]);
    /// assert_eq!(d.len()?, 3);
    /// assert_eq!(d.keys()?, ["um", "dois", "três"]);
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    DictProxy<K, V>, Dict
);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The value of `key`, or `None`. Python: `d.get(key)`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`] when the server ended; [`ManagerError::Decode`] when the
    /// value stored is not a `V`; the errors of connecting ([`ManagerError::Connect`]).
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        // The key is encoded straight into the request, the value decoded where it arrived.
        self.link.exchange(
            |frame, object| codec::write_dict_get(frame, object, key),
            |answer| match answer {
                Answer::Maybe(value) => value.map(decode).transpose(),
                other => Err(unexpected(other.into_reply())),
            },
        )
    }

    /// The value of `key`. Python: `d[key]`.
    ///
    /// # Errors
    /// [`ManagerError::KeyError`] when the dict has no `key`; as [`get`](Self::get).
    pub fn get_item(&self, key: &K) -> Result<V, ManagerError> {
        self.get(key)?.ok_or(ManagerError::KeyError)
    }

    /// The values of `keys`, in one round trip (no Python counterpart: Python makes one
    /// per key).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<V>>, ManagerError> {
        let keys = keys.iter().map(encode).collect::<Result<_, _>>()?;
        let reply = self.link.call(Call::DictGetMany(keys))?;
        let values = expect!(reply, Reply::MaybeItems(values) => values)?;
        values
            .iter()
            .map(|value| value.as_deref().map(|bytes| decode(bytes)).transpose())
            .collect()
    }

    /// Sets `key` to `value`. Python: `d[key] = value`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`] when `key` or `value` does not serialize; as
    /// [`get`](Self::get).
    pub fn set(&self, key: &K, value: &V) -> Result<(), ManagerError> {
        // Key and value are encoded straight into the request.
        self.link.exchange(
            |frame, object| codec::write_dict_set(frame, object, key, value),
            |answer| expect!(answer.into_reply(), Reply::Done => ()),
        )
    }

    /// Sets every pair, in one round trip. Python: `d.update(pairs)`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<(), ManagerError> {
        let pairs = pairs
            .into_iter()
            .map(|(key, value)| Ok((encode(&key)?, encode(&value)?)))
            .collect::<Result<_, ManagerError>>()?;
        let reply = self.link.call(Call::DictUpdate(pairs))?;
        expect!(reply, Reply::Done => ())
    }

    /// The value of `key`, first setting it to `default` if it has none, in one step.
    /// Python: `d.setdefault(key, default)`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn setdefault(&self, key: &K, default: &V) -> Result<V, ManagerError> {
        let reply = self
            .link
            .call(Call::DictSetDefault(encode(key)?, encode(default)?))?;
        decode(&expect!(reply, Reply::Item(value) => value)?)
    }

    /// Removes `key` and returns its value, or `None`. Python: `d.pop(key, None)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn pop(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let reply = self.link.call(Call::DictPop(encode(key)?))?;
        let value = expect!(reply, Reply::Maybe(value) => value)?;
        value.map(|bytes| decode(&bytes)).transpose()
    }

    /// Removes `key`. Python: `del d[key]`.
    ///
    /// # Errors
    /// [`ManagerError::KeyError`] when the dict has no `key`; as [`get`](Self::get).
    pub fn del_item(&self, key: &K) -> Result<(), ManagerError> {
        self.pop(key)?.map(drop).ok_or(ManagerError::KeyError)
    }

    /// Whether the dict has `key`. Python: `key in d`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        let reply = self.link.call(Call::DictContains(encode(key)?))?;
        expect!(reply, Reply::Bool(present) => present)
    }

    /// How many keys. Python: `len(d)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn len(&self) -> Result<usize, ManagerError> {
        len(&self.link)
    }

    /// Whether the dict is empty. Python: `not d`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// The pairs, in insertion order. Python: `d.items()` (a copy, as `list(d.items())`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        let reply = self.link.call(Call::DictItems)?;
        let pairs = expect!(reply, Reply::Pairs(pairs) => pairs)?;
        pairs
            .iter()
            .map(|(key, value)| Ok((decode(key)?, decode(value)?)))
            .collect()
    }

    /// The keys, in insertion order. Python: `list(d.keys())`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        let reply = self.link.call(Call::DictKeys)?;
        decode_all(&expect!(reply, Reply::Items(keys) => keys)?)
    }

    /// The values, in insertion order. Python: `list(d.values())`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        let reply = self.link.call(Call::DictValues)?;
        decode_all(&expect!(reply, Reply::Items(values) => values)?)
    }

    /// Removes every key. Python: `d.clear()`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::Clear)?, Reply::Done => ())
    }
}

fn len(link: &Link) -> Result<usize, ManagerError> {
    let n = expect!(link.call(Call::Len)?, Reply::Count(n) => n)?;
    usize::try_from(n).map_err(|_| ManagerError::Decode(format!("a length of {n}")))
}

fn decode_all<T: DeserializeOwned>(items: &[serde_bytes::ByteBuf]) -> Result<Vec<T>, ManagerError> {
    items.iter().map(|item| decode(item)).collect()
}

proxy!(
    /// A `list` held by a manager. Python: `Manager().list()` (a `ListProxy`). Indexes may
    /// be negative, counting from the end, as in Python.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let l = manager.list::<i32>()?;
    /// l.extend([1, 2, 3])?;
    /// l.append(&4)?;
    /// assert_eq!(l.get(-1)?, 4);
    /// assert_eq!(l.pop(None)?, 4);
    /// assert_eq!(l.to_vec()?, [1, 2, 3]);
    /// assert!(matches!(l.get(10), Err(shared::ManagerError::IndexError(_))));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    ListProxy<T>, List
);

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Adds `item` at the end. Python: `l.append(item)`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`]; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn append(&self, item: &T) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::ListAppend(encode(item)?))?, Reply::Done => ())
    }

    /// Adds every item at the end, in one round trip. Python: `l.extend(items)`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<(), ManagerError> {
        let items = items
            .into_iter()
            .map(|item| encode(&item))
            .collect::<Result<_, _>>()?;
        expect!(self.link.call(Call::ListExtend(items))?, Reply::Done => ())
    }

    /// Inserts `item` before `index` (clamped to the list, as Python's). Python:
    /// `l.insert(index, item)`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn insert(&self, index: i64, item: &T) -> Result<(), ManagerError> {
        let reply = self.link.call(Call::ListInsert(index, encode(item)?))?;
        expect!(reply, Reply::Done => ())
    }

    /// The item at `index`. Python: `l[index]`.
    ///
    /// # Errors
    /// [`ManagerError::IndexError`] out of range; [`ManagerError::Decode`] when the item is
    /// not a `T`; as [`append`](Self::append).
    pub fn get(&self, index: i64) -> Result<T, ManagerError> {
        item_get(&self.link, index)
    }

    /// Replaces the item at `index`. Python: `l[index] = item`.
    ///
    /// # Errors
    /// [`ManagerError::IndexError`] out of range; as [`append`](Self::append).
    pub fn set(&self, index: i64, item: &T) -> Result<(), ManagerError> {
        item_set(&self.link, index, item)
    }

    /// Removes and returns the item at `index`, the last for `None`. Python: `l.pop()`,
    /// `l.pop(index)`.
    ///
    /// # Errors
    /// [`ManagerError::IndexError`] on an empty list or out of range; as
    /// [`get`](Self::get).
    pub fn pop(&self, index: Option<i64>) -> Result<T, ManagerError> {
        decode(&expect!(self.link.call(Call::ListPop(index))?, Reply::Item(item) => item)?)
    }

    /// How many items. Python: `len(l)`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn len(&self) -> Result<usize, ManagerError> {
        len(&self.link)
    }

    /// Whether the list is empty. Python: `not l`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item, in one round trip. Python: `l[:]`, `list(l)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        to_vec(&self.link)
    }

    /// Removes every item. Python: `l.clear()`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::Clear)?, Reply::Done => ())
    }
}

fn item_get<T: DeserializeOwned>(link: &Link, index: i64) -> Result<T, ManagerError> {
    decode(&expect!(link.call(Call::ItemGet(index))?, Reply::Item(item) => item)?)
}

fn item_set<T: Serialize>(link: &Link, index: i64, item: &T) -> Result<(), ManagerError> {
    expect!(link.call(Call::ItemSet(index, encode(item)?))?, Reply::Done => ())
}

fn to_vec<T: DeserializeOwned>(link: &Link) -> Result<Vec<T>, ManagerError> {
    decode_all(&expect!(link.call(Call::ListAll)?, Reply::Items(items) => items)?)
}

proxy!(
    /// An array of fixed length held by a manager. Python: `Manager().Array(typecode,
    /// sequence)` (an `ArrayProxy`); any serializable `T` stands for the type code.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let a = manager.array(&[0.5_f64, 1.5])?;
    /// a.set(1, &2.5)?;
    /// assert_eq!(a.to_vec()?, [0.5, 2.5]);
    /// assert_eq!(a.len()?, 2);
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    ArrayProxy<T>, Array
);

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// The item at `index`. Python: `a[index]`.
    ///
    /// # Errors
    /// [`ManagerError::IndexError`] out of range; [`ManagerError::Decode`] when the item is
    /// not a `T`; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn get(&self, index: i64) -> Result<T, ManagerError> {
        item_get(&self.link, index)
    }

    /// Replaces the item at `index`. Python: `a[index] = item`.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`ManagerError::Encode`].
    pub fn set(&self, index: i64, item: &T) -> Result<(), ManagerError> {
        item_set(&self.link, index, item)
    }

    /// How many items. Python: `len(a)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn len(&self) -> Result<usize, ManagerError> {
        len(&self.link)
    }

    /// Whether the array has no items.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// A copy of every item. Python: `a[:]`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        to_vec(&self.link)
    }
}

proxy!(
    /// A namespace held by a manager: named attributes of any serializable types. Python:
    /// `Manager().Namespace()`; `ns.x` is [`get`](Self::get), `ns.x = v` is
    /// [`set`](Self::set).
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", &10)?;
    /// ns.set("nome", "ana")?;
    /// assert_eq!(ns.get::<i32>("x")?, 10);
    /// assert_eq!(ns.get::<String>("nome")?, "ana");
    /// assert!(matches!(ns.get::<i32>("y"), Err(shared::ManagerError::AttributeError(_))));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    NamespaceProxy, Namespace
);

impl NamespaceProxy {
    /// The attribute `name`, as a `T`. Python: `ns.name`.
    ///
    /// # Errors
    /// [`ManagerError::AttributeError`] when there is none; [`ManagerError::Decode`] when it
    /// is not a `T`; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        decode(&expect!(self.link.call(Call::GetAttr(name.into()))?, Reply::Item(v) => v)?)
    }

    /// Sets the attribute `name`. Python: `ns.name = value`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`]; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), ManagerError> {
        let reply = self.link.call(Call::SetAttr(name.into(), encode(value)?))?;
        expect!(reply, Reply::Done => ())
    }

    /// Removes the attribute `name`. Python: `del ns.name`.
    ///
    /// # Errors
    /// [`ManagerError::AttributeError`] when there is none; as [`set`](Self::set).
    pub fn del(&self, name: &str) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::DelAttr(name.into()))?, Reply::Done => ())
    }
}

proxy!(
    /// One value held by a manager. Python: `Manager().Value(typecode, value)` (a
    /// `ValueProxy`); any serializable `T` stands for the type code. Reading and writing are
    /// two requests: to update it from several processes, hold a lock around both, as in
    /// Python.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let v = manager.value(&7_i64)?;
    /// v.set_value(&(v.value()? * 6))?;
    /// assert_eq!(v.value()?, 42);
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    ValueProxy<T>, Value
);

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value. Python: `v.value`, `v.get()`.
    ///
    /// # Errors
    /// [`ManagerError::Decode`] when it is not a `T`; [`ManagerError::ServerGone`];
    /// [`ManagerError::Connect`].
    pub fn value(&self) -> Result<T, ManagerError> {
        decode(&expect!(self.link.call(Call::ValueGet)?, Reply::Item(v) => v)?)
    }

    /// Replaces the value. Python: `v.value = x`, `v.set(x)`.
    ///
    /// # Errors
    /// [`ManagerError::Encode`]; [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn set_value(&self, value: &T) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::ValueSet(encode(value)?))?, Reply::Done => ())
    }
}

/// A lock (or semaphore unit) acquired through a proxy; released when dropped. Python: the
/// body of `with lock:`.
#[must_use = "dropping the guard releases at once"]
pub struct ProxyGuard<'a> {
    link: &'a Link,
    held: bool,
}

impl ProxyGuard<'_> {
    /// Releases now, reporting whether the server could. Dropping the guard does the same
    /// and ignores the error.
    ///
    /// # Errors
    /// [`ManagerError::NotHeld`] when someone else released it meanwhile (a `Lock` may be
    /// released by anyone); [`ManagerError::ServerGone`].
    pub fn release(mut self) -> Result<(), ManagerError> {
        self.held = false;
        release(self.link)
    }

    /// Keeps it acquired: nothing is released on drop (Python's `acquire()` without a
    /// `release()`; someone may call the proxy's `release` later).
    pub fn forget(mut self) {
        self.held = false;
    }
}

impl Drop for ProxyGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            // A server that is gone has released everything already.
            let _ = release(self.link);
        }
    }
}

impl std::fmt::Debug for ProxyGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyGuard").field("of", self.link).finish()
    }
}

fn release(link: &Link) -> Result<(), ManagerError> {
    expect!(link.call(Call::Release)?, Reply::Done => ())
}

/// `acquire` with a wait: a guard when acquired, `None` when the time ran out.
fn acquire(link: &Link, wait: Option<Duration>) -> Result<Option<ProxyGuard<'_>>, ManagerError> {
    let acquired = expect!(link.call(Call::Acquire(wait))?, Reply::Bool(acquired) => acquired)?;
    Ok(acquired.then_some(ProxyGuard { link, held: true }))
}

/// The methods every proxy of something acquirable has. Python: `AcquirerProxy`.
macro_rules! acquirer {
    ($name:ident) => {
        impl $name {
            /// Acquires, waiting as long as it takes; the guard releases on drop. Python:
            /// `acquire()`, `with x:`.
            ///
            /// # Errors
            /// [`ManagerError::ServerGone`] when the server ended (a waiting call returns
            /// at once); [`ManagerError::Connect`].
            pub fn acquire(&self) -> Result<ProxyGuard<'_>, ManagerError> {
                acquire(&self.link, None)?.ok_or_else(|| {
                    ManagerError::Decode("a wait without a deadline timed out".into())
                })
            }

            /// Acquires, waiting up to `timeout`; `None` when it could not. Python:
            /// `acquire(timeout=t)`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(
                &self,
                timeout: Duration,
            ) -> Result<Option<ProxyGuard<'_>>, ManagerError> {
                acquire(&self.link, Some(timeout))
            }

            /// Acquires if it can without waiting. Python: `acquire(False)`.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<Option<ProxyGuard<'_>>, ManagerError> {
                acquire(&self.link, Some(Duration::ZERO))
            }

            /// Releases without a guard (one kept with [`ProxyGuard::forget`]). Python:
            /// `release()`.
            ///
            /// # Errors
            /// [`ManagerError::NotHeld`] (or, for a bounded semaphore,
            /// [`ManagerError::TooManyReleases`]); as [`acquire`](Self::acquire).
            pub fn release(&self) -> Result<(), ManagerError> {
                release(&self.link)
            }
        }
    };
}

proxy!(
    /// A lock held by a manager. Python: `Manager().Lock()`. As Python's, anyone may release
    /// it; unlike Python's, a client that disconnects (its process ended, killed or not)
    /// while holding it releases it.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let lock = manager.lock()?;
    /// let held = lock.acquire()?;
    /// assert!(lock.try_acquire()?.is_none());
    /// drop(held);
    /// assert!(lock.try_acquire()?.is_some());
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    LockProxy, Lock
);
acquirer!(LockProxy);

proxy!(
    /// A re-entrant lock held by a manager. Python: `Manager().RLock()`. Its owner is the
    /// proxy (each proxy has its own connection): the same proxy may acquire it again.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let rlock = manager.rlock()?;
    /// let outer = rlock.acquire()?;
    /// let inner = rlock.acquire()?;
    /// assert!(rlock.clone().try_acquire()?.is_none(), "another proxy is another owner");
    /// drop((inner, outer));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    RLockProxy, RLock
);
acquirer!(RLockProxy);

proxy!(
    /// A semaphore (or bounded semaphore) held by a manager. Python:
    /// `Manager().Semaphore(n)`, `Manager().BoundedSemaphore(n)`.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let sem = manager.bounded_semaphore(1)?;
    /// let unit = sem.acquire()?;
    /// assert_eq!(sem.get_value()?, 0);
    /// drop(unit);
    /// assert!(matches!(sem.release(), Err(shared::ManagerError::TooManyReleases)));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    SemaphoreProxy, Semaphore
);
acquirer!(SemaphoreProxy);

impl SemaphoreProxy {
    /// How many units are free. Python: `get_value()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn get_value(&self) -> Result<u64, ManagerError> {
        expect!(self.link.call(Call::SemaphoreValue)?, Reply::Count(n) => n)
    }
}

proxy!(
    /// An event held by a manager. Python: `Manager().Event()`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let manager = shared::Manager::new()?;
    /// let event = manager.event()?;
    /// assert!(!event.wait_timeout(Duration::from_millis(1))?);
    /// event.set()?;
    /// assert!(event.is_set()? && event.wait()?);
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    EventProxy, Event
);

impl EventProxy {
    /// Sets the flag and wakes every waiter. Python: `set()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn set(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::EventSet)?, Reply::Done => ())
    }

    /// Clears the flag. Python: `clear()`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn clear(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::EventClear)?, Reply::Done => ())
    }

    /// Whether the flag is set. Python: `is_set()`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        expect!(self.link.call(Call::EventIsSet)?, Reply::Bool(set) => set)
    }

    /// Waits until the flag is set; returns `true`. Python: `wait()`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn wait(&self) -> Result<bool, ManagerError> {
        expect!(self.link.call(Call::EventWait(None))?, Reply::Bool(set) => set)
    }

    /// Waits up to `timeout`; whether the flag was set. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        expect!(self.link.call(Call::EventWait(Some(timeout)))?, Reply::Bool(set) => set)
    }
}

proxy!(
    /// A condition variable held by a manager, over a re-entrant lock. Python:
    /// `Manager().Condition()`. Acquire it (the guard releases on drop), then
    /// [`wait`](Self::wait) or [`notify`](Self::notify) while holding it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let manager = shared::Manager::new()?;
    /// let cond = manager.condition()?;
    /// let held = cond.acquire()?;
    /// assert!(!cond.wait_timeout(Duration::from_millis(1))?, "nobody notified");
    /// cond.notify_all()?;
    /// drop(held);
    /// assert!(matches!(cond.notify(1), Err(shared::ManagerError::NotHeld)));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    ConditionProxy, Condition
);
acquirer!(ConditionProxy);

impl ConditionProxy {
    /// Releases the lock, waits to be notified, and takes the lock back. Python: `wait()`.
    ///
    /// # Errors
    /// [`ManagerError::NotHeld`] when this proxy does not hold the lock;
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn wait(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::Wait(None))?, Reply::Bool(_) => ())
    }

    /// As [`wait`](Self::wait), up to `timeout`; whether it was notified. Python:
    /// `wait(timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        expect!(self.link.call(Call::Wait(Some(timeout)))?, Reply::Bool(woken) => woken)
    }

    /// Wakes up to `n` waiters. Python: `notify(n)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn notify(&self, n: u64) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::Notify(n))?, Reply::Done => ())
    }

    /// Wakes every waiter. Python: `notify_all()`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::NotifyAll)?, Reply::Done => ())
    }
}

proxy!(
    /// A barrier held by a manager. Python: `Manager().Barrier(parties)`.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let barrier = manager.barrier(1)?;
    /// assert_eq!(barrier.wait()?, 0);
    /// barrier.abort()?;
    /// assert!(barrier.broken()?);
    /// assert!(matches!(barrier.wait(), Err(shared::ManagerError::BrokenBarrier)));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    BarrierProxy, Barrier
);

impl BarrierProxy {
    /// Waits until every party has arrived; returns this party's arrival index. Python:
    /// `wait()`.
    ///
    /// # Errors
    /// [`ManagerError::BrokenBarrier`] when the barrier is or becomes broken;
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn wait(&self) -> Result<u64, ManagerError> {
        expect!(self.link.call(Call::BarrierWait(None))?, Reply::Count(n) => n)
    }

    /// As [`wait`](Self::wait), up to `timeout`, after which the barrier breaks. Python:
    /// `wait(timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u64, ManagerError> {
        expect!(self.link.call(Call::BarrierWait(Some(timeout)))?, Reply::Count(n) => n)
    }

    /// Breaks the barrier. Python: `abort()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn abort(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::BarrierAbort)?, Reply::Done => ())
    }

    /// Mends the barrier (waiting parties fail). Python: `reset()`.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    pub fn reset(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::BarrierReset)?, Reply::Done => ())
    }

    fn state(&self) -> Result<(u64, u64, bool), ManagerError> {
        expect!(self.link.call(Call::BarrierState)?, Reply::Barrier(p, n, b) => (p, n, b))
    }

    /// How many parties it waits for. Python: `parties`.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    pub fn parties(&self) -> Result<u64, ManagerError> {
        Ok(self.state()?.0)
    }

    /// How many parties wait now. Python: `n_waiting`.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    pub fn n_waiting(&self) -> Result<u64, ManagerError> {
        Ok(self.state()?.1)
    }

    /// Whether it is broken. Python: `broken`.
    ///
    /// # Errors
    /// As [`abort`](Self::abort).
    pub fn broken(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }
}

/// The methods of both queue proxies. Python: `queue.Queue`'s, through a proxy.
macro_rules! queue_methods {
    ($name:ident) => {
        impl<T: Serialize + DeserializeOwned> $name<T> {
            /// Puts `item`, waiting for room as long as it takes. Python: `q.put(item)`.
            ///
            /// # Errors
            /// [`ManagerError::Encode`]; [`ManagerError::ServerGone`];
            /// [`ManagerError::Connect`].
            pub fn put(&self, item: &T) -> Result<(), ManagerError> {
                self.put_waiting(item, None)
            }

            /// Puts `item`, waiting up to `timeout` for room. Python: `q.put(item,
            /// timeout=t)`.
            ///
            /// # Errors
            /// [`ManagerError::Full`] when there was no room in time; as
            /// [`put`](Self::put).
            pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
                self.put_waiting(item, Some(timeout))
            }

            /// Puts `item` if there is room now. Python: `q.put_nowait(item)`.
            ///
            /// # Errors
            /// As [`put_timeout`](Self::put_timeout).
            pub fn put_nowait(&self, item: &T) -> Result<(), ManagerError> {
                self.put_waiting(item, Some(Duration::ZERO))
            }

            fn put_waiting(&self, item: &T, wait: Option<Duration>) -> Result<(), ManagerError> {
                expect!(self.link.call(Call::Put(encode(item)?, wait))?, Reply::Done => ())
            }

            /// Takes the oldest item, waiting as long as it takes. Python: `q.get()`.
            ///
            /// # Errors
            /// [`ManagerError::Decode`] when the item is not a `T`;
            /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
            pub fn get(&self) -> Result<T, ManagerError> {
                self.get_waiting(None)
            }

            /// Takes the oldest item, waiting up to `timeout`. Python: `q.get(timeout=t)`.
            ///
            /// # Errors
            /// [`ManagerError::Empty`] when none came in time; as [`get`](Self::get).
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
                self.get_waiting(Some(timeout))
            }

            /// Takes the oldest item if there is one. Python: `q.get_nowait()`.
            ///
            /// # Errors
            /// As [`get_timeout`](Self::get_timeout).
            pub fn get_nowait(&self) -> Result<T, ManagerError> {
                self.get_waiting(Some(Duration::ZERO))
            }

            fn get_waiting(&self, wait: Option<Duration>) -> Result<T, ManagerError> {
                decode(&expect!(self.link.call(Call::Get(wait))?, Reply::Item(item) => item)?)
            }

            /// How many items wait. Python: `q.qsize()`.
            ///
            /// # Errors
            /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
            pub fn qsize(&self) -> Result<usize, ManagerError> {
                len(&self.link)
            }

            /// Whether no item waits. Python: `q.empty()`.
            ///
            /// # Errors
            /// As [`qsize`](Self::qsize).
            pub fn empty(&self) -> Result<bool, ManagerError> {
                Ok(self.qsize()? == 0)
            }

            /// Whether the queue is at its maxsize. Python: `q.full()`.
            ///
            /// # Errors
            /// As [`qsize`](Self::qsize).
            pub fn full(&self) -> Result<bool, ManagerError> {
                expect!(self.link.call(Call::Full)?, Reply::Bool(full) => full)
            }
        }
    };
}

proxy!(
    /// A queue held by a manager. Python: `Manager().Queue(maxsize)` (a `queue.Queue` in
    /// the server). Unlike [`Queue`](crate::Queue), every item goes through the server.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let q = manager.queue::<String>(1)?;
    /// q.put(&"a".into())?;
    /// assert!(q.full()?);
    /// assert!(matches!(q.put_nowait(&"b".into()), Err(shared::ManagerError::Full)));
    /// assert_eq!(q.get()?, "a");
    /// assert!(matches!(q.get_nowait(), Err(shared::ManagerError::Empty)));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    QueueProxy<T>, Queue
);
queue_methods!(QueueProxy);

proxy!(
    /// A joinable queue held by a manager. Python: `Manager().JoinableQueue(maxsize)`.
    ///
    /// ```
    /// let manager = shared::Manager::new()?;
    /// let q = manager.joinable_queue::<i32>(0)?;
    /// q.put(&1)?;
    /// assert_eq!(q.get()?, 1);
    /// q.task_done()?;
    /// q.join()?;
    /// assert!(matches!(q.task_done(), Err(shared::ManagerError::TooManyTaskDone)));
    /// # Ok::<(), shared::ManagerError>(())
    /// ```
    JoinableQueueProxy<T>, JoinableQueue
);
queue_methods!(JoinableQueueProxy);

impl<T> JoinableQueueProxy<T> {
    /// Marks one item taken as processed. Python: `q.task_done()`.
    ///
    /// # Errors
    /// [`ManagerError::TooManyTaskDone`] beyond the items put;
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn task_done(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::TaskDone)?, Reply::Done => ())
    }

    /// Waits until every item put has been marked done. Python: `q.join()`.
    ///
    /// # Errors
    /// [`ManagerError::ServerGone`]; [`ManagerError::Connect`].
    pub fn join(&self) -> Result<(), ManagerError> {
        expect!(self.link.call(Call::Join(None))?, Reply::Bool(_) => ())
    }

    /// As [`join`](Self::join), up to `timeout`; whether every item was done. (Python's
    /// `join` has no timeout.)
    ///
    /// # Errors
    /// As [`join`](Self::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        expect!(self.link.call(Call::Join(Some(timeout)))?, Reply::Bool(done) => done)
    }
}
