"""Weight sizes of each export format for the real Qwen2.5-VL architectures
(``python -m train.export --estimate-sizes``), from parameter counts: nothing is downloaded."""

from __future__ import annotations

from train.architectures import count_parameters

#: NF4: 4 bits a weight plus, with double quantisation, an 8-bit absmax per block of 64 and an
#: fp32 scale per 256 blocks.
NF4_BYTES_PER_WEIGHT = 0.5 + 1 / 64 + 4 / (64 * 256)
#: Q4_K_M averages about 4.85 bits a weight over a llama.cpp model.
Q4_K_M_BYTES_PER_WEIGHT = 4.85 / 8


def estimate_sizes(arch: str = "3b", group_size: int = 128) -> list[tuple[str, float, str]]:
    """``(format, bytes, what stays in 16 bits)`` for each export format of the real architecture."""
    c = count_parameters(arch)
    sixteen = 2 * (c.vision + c.embeddings + c.lm_head + c.decoder_other)
    w4a16 = 0.5 + 2 / group_size  # packed int4 + one bf16 scale per group (symmetric: no zero point)
    kept = "vision tower, embeddings, lm_head, norms"
    return [
        ("merged (bf16)", 2.0 * c.total, "everything"),
        ("bnb-4bit (NF4)", sixteen + NF4_BYTES_PER_WEIGHT * c.decoder_linear, kept),
        (f"w4a16 (GPTQ g{group_size})", sixteen + w4a16 * c.decoder_linear, kept),
        (
            "gguf Q4_K_M + mmproj f16 (approx.)",
            Q4_K_M_BYTES_PER_WEIGHT * (c.embeddings + c.lm_head + c.decoder_linear + c.decoder_other)
            + 2 * c.vision,
            "vision projector (mmproj)",
        ),
    ]


def format_size_table(arch: str = "3b", group_size: int = 128) -> str:
    """A Markdown table of parameter counts and export sizes for ``arch``."""
    c = count_parameters(arch)
    lines = [
        f"Qwen2.5-VL-{arch.upper()}: {c.total / 1e9:.3f} B parameters = vision tower {c.vision / 1e6:.1f} M"
        f" + embeddings {c.embeddings / 1e6:.1f} M + lm_head {c.lm_head / 1e6:.1f} M"
        f"{' (tied)' if not c.lm_head else ''} + decoder linear {c.decoder_linear / 1e6:.1f} M"
        f" + decoder norms/biases {c.decoder_other / 1e6:.2f} M",
        "",
        "| format | weights (GiB) | weights (GB) | kept in 16 bits |",
        "|---|---:|---:|---|",
    ]
    for name, size, kept in estimate_sizes(arch, group_size):
        lines.append(f"| {name} | {size / 2**30:.2f} | {size / 1e9:.2f} | {kept} |")
    lines += [
        "",
        f"KV cache (bf16): {c.kv_bytes_per_token / 1024:.0f} KiB a token; a 512x512 image is 334 tokens, "
        f"so a 2,048-token sequence needs {2048 * c.kv_bytes_per_token / 2**20:.0f} MiB.",
    ]
    return "\n".join(lines)
