//! `Debug` that never prints a secret. Types that hold a plaintext password or PIN (render
//! inputs and outputs, service inputs) implement `Debug` through [`debug_redacted!`], which names
//! every field (a field added later and not listed fails to compile) and prints the secret ones
//! as `<redacted>`; a rendered file (it holds trunk passwords and PINs) prints as its size.

use std::collections::BTreeMap;
use std::fmt;

/// A secret field, as `Debug` shows it.
pub struct Redacted<'a, T: ?Sized>(pub &'a T);

impl fmt::Debug for Redacted<'_, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Redacted<'_, Option<String>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for Redacted<'_, BTreeMap<String, String>> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, format!("<{} bytes>", v.len()))),
            )
            .finish()
    }
}

/// `debug_redacted!(Type { plain, fields } secret { password })`.
#[macro_export]
macro_rules! debug_redacted {
    ($t:ident { $($plain:ident),* $(,)? } secret { $($secret:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $t { $($plain,)* $($secret,)* } = self;
                f.debug_struct(stringify!($t))
                    $(.field(stringify!($plain), $plain))*
                    $(.field(stringify!($secret), &$crate::redact::Redacted($secret)))*
                    .finish()
            }
        }
    };
}
