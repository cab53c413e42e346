"""Applications of one trained unconditional model, at sampling time: inpainting, super-resolution, denoising,
inversion and anomaly detection. Each reuses the samplers through their hooks (x/start/project)."""
