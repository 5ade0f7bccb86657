//! The key-naming table: how each framework names a normalized parameter's W, u and v, in one
//! place for loading, saving and the `specnorm` tool's readers.

/// Which framework wrote (or will read) a checkpoint, and so its key names and layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Burn's own names.
    Burn,
    /// `paddle.nn.utils.spectral_norm` state dicts: `P_orig`, `P_u`, `P_v`.
    Paddle,
    /// `torch.nn.utils.spectral_norm`: `P_orig`, `P_u`, `P_v`, Linear weights `[out, in]`.
    PyTorchHook,
    /// `torch.nn.utils.parametrizations.spectral_norm`: `M.parametrizations.N.original`,
    /// `….0._u`, `….0._v`, Linear weights `[out, in]`.
    PyTorchParametrization,
}

/// The file keys of one normalized parameter's W, u and v.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedKeys {
    /// The key of the stored (trainable) W.
    pub weight: String,
    /// The key of u.
    pub u: String,
    /// The key of v.
    pub v: String,
}

impl Checkpoint {
    /// One of each naming scheme (`PyTorchHook` names as `Paddle` does), in the order to try
    /// them on a file of unknown origin.
    pub const NAMINGS: [Checkpoint; 3] = [
        Checkpoint::Paddle,
        Checkpoint::PyTorchParametrization,
        Checkpoint::Burn,
    ];

    /// The keys under which this framework stores W, u and v of the normalized parameter
    /// whose Burn path is `path` (`disc.fc.weight`).
    ///
    /// ```
    /// use spectral_norm::checkpoint::Checkpoint;
    ///
    /// let keys = Checkpoint::PyTorchParametrization.keys("disc.fc.weight");
    /// assert_eq!(keys.weight, "disc.fc.parametrizations.weight.original");
    /// assert_eq!(keys.u, "disc.fc.parametrizations.weight.0._u");
    /// assert_eq!(Checkpoint::Paddle.keys("fc.weight").v, "fc.weight_v");
    /// assert_eq!(Checkpoint::Burn.keys("fc.weight").u, "fc.weight.spectral_norm.u");
    /// ```
    pub fn keys(self, path: &str) -> NormalizedKeys {
        let (module, name) = match path.rsplit_once('.') {
            Some((module, name)) => (format!("{module}."), name),
            None => (String::new(), path),
        };
        let keys = |weight: String, u: String, v: String| NormalizedKeys { weight, u, v };
        match self {
            Checkpoint::Burn => keys(
                path.to_string(),
                format!("{path}.spectral_norm.u"),
                format!("{path}.spectral_norm.v"),
            ),
            Checkpoint::Paddle | Checkpoint::PyTorchHook => keys(
                format!("{path}_orig"),
                format!("{path}_u"),
                format!("{path}_v"),
            ),
            Checkpoint::PyTorchParametrization => {
                let stem = format!("{module}parametrizations.{name}");
                keys(
                    format!("{stem}.original"),
                    format!("{stem}.0._u"),
                    format!("{stem}.0._v"),
                )
            }
        }
    }

    /// The key of a learned scale γ ([`SpectralNormConfig::learned_scale`]) of the parameter
    /// at `path`: Burn records carry it; the other frameworks have none.
    ///
    /// [`SpectralNormConfig::learned_scale`]: crate::SpectralNormConfig::learned_scale
    ///
    /// ```
    /// use spectral_norm::checkpoint::Checkpoint;
    ///
    /// let key = Checkpoint::Burn.gamma_key("fc.weight");
    /// assert_eq!(key.as_deref(), Some("fc.weight.spectral_norm.gamma"));
    /// assert_eq!(Checkpoint::Paddle.gamma_key("fc.weight"), None);
    /// ```
    pub fn gamma_key(self, path: &str) -> Option<String> {
        (self == Checkpoint::Burn).then(|| format!("{path}.spectral_norm.gamma"))
    }

    /// The Burn path of the parameter whose W this framework would store under `weight_key`,
    /// if the key has this framework's form for a W (every key does for Burn): the inverse of
    /// [`keys`](Self::keys)`(path).weight`.
    ///
    /// ```
    /// use spectral_norm::checkpoint::Checkpoint;
    ///
    /// let path = Checkpoint::PyTorchParametrization.parameter("fc.parametrizations.weight.original");
    /// assert_eq!(path.as_deref(), Some("fc.weight"));
    /// assert_eq!(Checkpoint::Paddle.parameter("fc.weight_orig").as_deref(), Some("fc.weight"));
    /// assert_eq!(Checkpoint::Paddle.parameter("fc.weight"), None);
    /// ```
    pub fn parameter(self, weight_key: &str) -> Option<String> {
        match self {
            Checkpoint::Burn => Some(weight_key.to_string()),
            Checkpoint::Paddle | Checkpoint::PyTorchHook => {
                weight_key.strip_suffix("_orig").map(str::to_string)
            }
            Checkpoint::PyTorchParametrization => {
                let stem = weight_key.strip_suffix(".original")?;
                match stem.strip_prefix("parametrizations.") {
                    Some(name) => Some(name.to_string()),
                    None => {
                        let (module, name) = stem.rsplit_once(".parametrizations.")?;
                        Some(format!("{module}.{name}"))
                    }
                }
                .filter(|path| !path.is_empty() && !path.contains(".parametrizations."))
            }
        }
    }

    /// `(file key, Burn key)` for W, u and v of the normalized parameter at `path`; none for
    /// Burn, whose keys are its own.
    pub(crate) fn renames(self, path: &str) -> Vec<(String, String)> {
        if self == Checkpoint::Burn {
            return Vec::new();
        }
        let (file, burn) = (self.keys(path), Checkpoint::Burn.keys(path));
        vec![
            (file.weight, burn.weight),
            (file.u, burn.u),
            (file.v, burn.v),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::Checkpoint;

    #[test]
    fn parameter_inverts_keys_for_every_naming() {
        for kind in [
            Checkpoint::Burn,
            Checkpoint::Paddle,
            Checkpoint::PyTorchHook,
            Checkpoint::PyTorchParametrization,
        ] {
            for path in ["weight", "fc.weight", "disc.blocks.0.conv.weight"] {
                let keys = kind.keys(path);
                assert_eq!(
                    kind.parameter(&keys.weight).as_deref(),
                    Some(path),
                    "{kind:?}"
                );
            }
        }
        assert_eq!(
            Checkpoint::PyTorchParametrization.parameter("fc.weight"),
            None
        );
    }
}
