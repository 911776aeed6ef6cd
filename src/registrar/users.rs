//! Who may register: [`User`] (the realm its HA1s were made for, one HA1 per digest
//! algorithm, never a password) and [`Users`], every user by canonical AOR, read on each
//! REGISTER and changed only by the writer once the change is on disk.
//!
//! Must not touch: SQLite (`registrar::writer` reads and writes the rows), digest
//! verification (`registrar::digest`, `Registrar::authenticate`).

use super::digest::{self, Hex};
use crate::config::DigestAlgorithm;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A user allowed to register its AOR: the realm its HA1s were made for, and one HA1
/// per algorithm (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub realm: Box<str>,
    ha1: [Option<Hex>; 2],
}

pub(super) fn slot(alg: DigestAlgorithm) -> usize {
    DigestAlgorithm::ALL
        .iter()
        .position(|&a| a == alg)
        .expect("every algorithm has a slot")
}

impl User {
    /// A user whose HA1s are made from `password` for `username` (the AOR's user part)
    /// in `realm`, one per algorithm.
    pub fn from_password(username: &str, realm: &str, password: &str) -> User {
        let mut ha1 = [None, None];
        for alg in DigestAlgorithm::ALL {
            ha1[slot(alg)] = Some(digest::ha1(alg, username, realm, password));
        }
        User {
            realm: realm.into(),
            ha1,
        }
    }

    /// A user from HA1s in hex (either may be missing; bad hex counts as missing).
    pub fn from_hex(realm: &str, sha256: Option<&str>, md5: Option<&str>) -> User {
        let mut ha1 = [None, None];
        ha1[slot(DigestAlgorithm::Sha256)] =
            sha256.and_then(|h| Hex::parse(DigestAlgorithm::Sha256, h));
        ha1[slot(DigestAlgorithm::Md5)] = md5.and_then(|h| Hex::parse(DigestAlgorithm::Md5, h));
        User {
            realm: realm.into(),
            ha1,
        }
    }

    pub fn ha1(&self, alg: DigestAlgorithm) -> Option<&Hex> {
        self.ha1[slot(alg)].as_ref()
    }

    /// The algorithms it has an HA1 for.
    pub fn algorithms(&self) -> Vec<DigestAlgorithm> {
        DigestAlgorithm::ALL
            .into_iter()
            .filter(|&a| self.ha1(a).is_some())
            .collect()
    }
}

/// Every user, by canonical AOR; read per REGISTER, changed by the writer.
#[derive(Default)]
pub struct Users(RwLock<HashMap<Box<str>, Arc<User>>>);

impl Users {
    pub fn get(&self, aor: &str) -> Option<Arc<User>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(aor)
            .cloned()
    }

    pub(super) fn set(&self, aor: &str, user: Option<Arc<User>>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match user {
            Some(u) => {
                map.insert(aor.into(), u);
            }
            None => {
                map.remove(aor);
            }
        }
    }

    pub(super) fn replace_all(&self, map: HashMap<Box<str>, Arc<User>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// AORs in order after `after`, at most `limit`.
    pub fn page(&self, after: Option<&str>, limit: usize) -> Vec<(String, Arc<User>)> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        let all = map.iter().map(|(k, v)| (&**k, v));
        super::page::first_after(all, after, limit)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}
