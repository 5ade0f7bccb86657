//! `specnorm bake IN OUT`: replace every spectrally normalized weight by the weight its layer
//! uses in evaluation, `W / σ` with `σ = u·(W v)`, under its plain key; drop u and v.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;

use crate::tensors;
use crate::weights::{axis_of, normalized, sigma_of_vectors};

/// Options of `bake`.
#[derive(Args, Debug)]
pub struct BakeArgs {
    /// Checkpoint with spectral norm: .safetensors (Burn, Paddle or PyTorch names), .pt, .pth,
    /// .pdparams or a Burn record (.bpk).
    pub input: PathBuf,
    /// Where to write the inference-only checkpoint: .safetensors, .pdparams, .bpk, .pt or
    /// .pth, by its extension. Written whole or not at all.
    pub output: PathBuf,
}

/// Runs `bake`, returning how many weights were baked.
pub fn run(args: &BakeArgs) -> Result<usize> {
    let mut tensors = tensors::read(&args.input)?;
    let sn = normalized(&tensors);
    if sn.is_empty() {
        bail!(
            "{}: no spectrally normalized weights to bake; adding spectral norm needs the model \
             (use the spectral-norm library), it cannot be done on a file",
            args.input.display()
        );
    }
    for entry in &sn {
        let key = format!("{}: {}", args.input.display(), entry.weight);
        let take = |tensors: &mut std::collections::BTreeMap<String, tensors::NamedTensor>,
                    k: &str| {
            tensors
                .remove(k)
                .ok_or_else(|| anyhow!("{key}: {k} missing"))
        };
        let (mut weight, u, v) = (
            take(&mut tensors, &entry.weight)?,
            take(&mut tensors, &entry.u)?,
            take(&mut tensors, &entry.v)?,
        );
        let dim = axis_of(&key, &weight, &u, &v)?;
        let sigma = sigma_of_vectors(&key, &weight, &u, &v, dim)?;
        weight.values.iter_mut().for_each(|x| *x /= sigma);
        if tensors.insert(entry.plain.clone(), weight).is_some() {
            bail!("{key}: the plain key {} is already taken", entry.plain);
        }
    }
    tensors::write(&args.output, &tensors)?;
    println!("baked {} weights into {}", sn.len(), args.output.display());
    Ok(sn.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{FILES, expected, fixture, scratch};

    #[test]
    fn baked_weights_are_the_frameworks_eval_weights() {
        let dir = scratch("bake");
        for (file, framework) in FILES {
            for extension in ["safetensors", "pdparams", "bpk", "pt"] {
                let output = dir.join(format!("{file}.baked.{extension}"));
                let args = BakeArgs {
                    input: fixture(file),
                    output: output.clone(),
                };
                assert_eq!(run(&args).unwrap(), 2);
                check_baked(file, framework, &tensors::read(&output).unwrap());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `baked` holds each framework's eval weight (`expected.json`) under the plain key, and
    /// no u or v.
    fn check_baked(
        file: &str,
        framework: &str,
        baked: &std::collections::BTreeMap<String, tensors::NamedTensor>,
    ) {
        let expected = expected();
        for (key, reference) in expected[framework]["weights"].as_object().unwrap() {
            let plain = normalized(&tensors::read(&fixture(file)).unwrap())
                .into_iter()
                .find(|n| &n.weight == key)
                .unwrap()
                .plain;
            let got = &baked[&plain].values;
            let want: Vec<f64> = reference["used"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(got.len(), want.len(), "{file} {plain}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{file} {plain}: {g} vs {w}");
            }
        }
        assert!(normalized(baked).is_empty());
        assert_eq!(baked.len(), 6, "{file}: fc, conv, head weights and biases");
    }

    #[test]
    fn baking_twice_and_bad_inputs_fail_without_writing() {
        let dir = scratch("bake-refusals");
        let baked = dir.join("baked.safetensors");
        run(&BakeArgs {
            input: fixture("paddle.safetensors"),
            output: baked.clone(),
        })
        .unwrap();
        let again = dir.join("again.safetensors");
        let error = run(&BakeArgs {
            input: baked.clone(),
            output: again.clone(),
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no spectrally normalized weights"),
            "{error}"
        );

        // Truncated and garbage files, and a wrong extension: one-line errors naming the file.
        let bytes = std::fs::read(fixture("torch_hook.safetensors")).unwrap();
        let cases = [
            ("truncated.safetensors", bytes[..bytes.len() / 2].to_vec()),
            ("garbage.safetensors", b"not a checkpoint at all".to_vec()),
            ("garbage.pt", b"PK\x03\x04 definitely not a zip".to_vec()),
            ("empty.pth", Vec::new()),
            ("weights.npz", bytes.clone()),
            (
                "truncated.pdparams",
                std::fs::read(fixture("paddle.pdparams")).unwrap()[..300].to_vec(),
            ),
        ];
        for (name, content) in cases {
            let input = dir.join(name);
            std::fs::write(&input, content).unwrap();
            let error = run(&BakeArgs {
                input,
                output: again.clone(),
            })
            .unwrap_err();
            let message = format!("{error:#}");
            assert!(
                message.contains(name) && !message.contains('\n'),
                "{message}"
            );
        }
        assert!(!again.exists(), "no partial output");
        assert!(!dir.join("again.safetensors.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
