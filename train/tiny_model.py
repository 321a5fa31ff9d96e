"""Build a tiny Qwen2.5-VL offline: same architecture class, tokenizer layout and chat template as
``Qwen/Qwen2.5-VL-3B-Instruct``, a few hundred thousand random weights.

The folder it writes is a normal model folder (``config.json``, ``model.safetensors``, tokenizer,
chat template, image processor config), so every loader in the project takes it exactly like the
hub model. Tests and ``make demo`` use it because the machines they run on have no model hub.

    python -m train.tiny_model --output-dir artifacts/tiny-qwen2.5-vl
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from data_prep.contract import DEFAULT_BOUNDS, ImageBounds
from data_prep.io_utils import atomic_directory
from train.modeling import save_processor_files

logger = logging.getLogger(__name__)

# Qwen2.5-VL's chat template (the tokenizer_config.json of the Instruct models): a default system
# turn when none is given, images as <|vision_start|><|image_pad|><|vision_end|> placeholders.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's special tokens, in Qwen's order (their ids follow the ordinary vocabulary).
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# A corpus for the byte-level BPE: the prompts, LaTeX commands CROHME/HME100K use, and the bundled
# captions when they are there. Byte-level BPE can encode any text; this only makes it compact.
_LATEX_WORDS = (
    r"\frac \sqrt \sum \int \lim \prod \infty \alpha \beta \gamma \delta \theta \lambda \mu \pi \sigma "
    r"\phi \times \div \pm \leq \geq \neq \rightarrow \ldots \cdots \sin \cos \tan \log \exp \left \right "
    r"\limits \begin \end \array \matrix \cases \mathrm \prime \angle \because \therefore \in \exists "
    r"\forall \cdot \circ \bot \parallel \triangle \odot \overline \hat \vec \dot \{ \} ( ) [ ] | ^ _ "
    r"0 1 2 3 4 5 6 7 8 9 a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M "
    r"N O P Q R S T U V W X Y Z + - = < > / ! , . ; : ' \\ & \downarrow \uparrow"
)


def _training_corpus() -> list[str]:
    from data_prep.contract import TASK_PROMPTS

    corpus = [p.replace("{prediction}", "") for p in TASK_PROMPTS.values()]
    corpus += [_LATEX_WORDS] * 20
    corpus.append("You are a helpful assistant. system user assistant REPLACE DELETE INSERT above below")
    captions = Path(__file__).resolve().parent.parent / "samples" / "crohme2014_test" / "caption_comer.txt"
    if captions.is_file():
        corpus += [line.partition("\t")[2] for line in captions.read_text(encoding="utf-8").splitlines()]
    return corpus


def build_tokenizer(vocab_size: int = 640):
    """A byte-level BPE tokenizer with Qwen's special tokens and chat template, trained offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(), trainer=trainer)
    bpe.add_special_tokens(QWEN_SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        model_max_length=32768,
        padding_side="right",
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )
    return tokenizer


#: Size presets: ``tiny`` (tests: fastest), ``reader`` (the demo's proof of learning: twice as wide,
#: enough to learn to read short rendered formulas on a CPU in about two minutes), ``structure``
#: (``make bench-learning``: the reader with a vision tower twice as wide, which costs almost no
#: time a step, and a rotary embedding that tells image tokens apart, below) and ``wide`` (4 layers x
#: 256, vision 128 wide: ~2.6x slower a step, no faster to learn; ``--model-size wide``).
#: Every preset keeps the text model's head_dim (hidden_size / num_heads) at 32: vLLM's CPU attention
#: refuses head_dim < 32 ("Unsupported CPU attention configuration: head_dim=16"), so ``tiny`` has 2
#: query heads sharing 1 key/value head (grouped-query attention, as in Qwen) rather than 4 of width 16.
#:
#: Why ``structure`` changes the rotary embedding: Qwen2.5-VL's M-RoPE gives each image token its
#: (row, column) on the token grid through the height and width sections of each head's rotary
#: frequencies. At head_dim 32 with the real base (1e6) those sections get only the slowest
#: frequencies (height 5.6e-3 .. 1.8e-4 rad a row, width 7.5e-5 .. 2.4e-6 rad a column), so on a
#: 6 x 2 token page every image token has practically the same position and the language model
#: must work out where a symbol sits from the pictures alone. Base 10 and sections (2, 7, 7) give
#: height 0.75 .. 0.32 and width 0.27 .. 0.12 rad a step: measured on ``make bench-learning``,
#: held-out ExpRate at 3,000 steps 5.44 instead of 3.77, and 7.95 with the wider vision tower.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 64,
        "num_layers": 2,
        "vision_depth": 2,
        "vision_hidden_size": 32,
        "num_heads": 2,
        "num_kv_heads": 1,
    },
    "reader": {
        "hidden_size": 128,
        "num_layers": 2,
        "vision_depth": 2,
        "vision_hidden_size": 64,
        "num_heads": 4,
        "num_kv_heads": 2,
    },
    "structure": {
        "hidden_size": 128,
        "num_layers": 2,
        "vision_depth": 2,
        "vision_hidden_size": 128,
        "num_heads": 4,
        "num_kv_heads": 2,
        "rope_theta": 10.0,
        "mrope_section": [2, 7, 7],
    },
    "wide": {
        "hidden_size": 256,
        "num_layers": 4,
        "vision_depth": 2,
        "vision_hidden_size": 128,
        "num_heads": 8,
        "num_kv_heads": 4,
    },
}


def tiny_config(
    tokenizer,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_depth: int = 2,
    vision_hidden_size: int = 32,
    num_heads: int = 2,
    num_kv_heads: int = 1,
    rope_theta: float = 1_000_000.0,
    mrope_section: list[int] | None = None,
):
    """A Qwen2.5-VL config with the real model's structure at toy width.

    ``rope_theta`` and ``mrope_section`` default to Qwen2.5-VL's base (1e6) and a (temporal,
    height, width) split of each head's rotary half in the real model's proportions."""
    from transformers import Qwen2_5_VLConfig

    head_dim = hidden_size // num_heads
    # M-RoPE splits each head's rotary half into (temporal, height, width) sections.
    half = head_dim // 2
    if mrope_section is None:
        mrope_section = [half - 2 * (half // 3), half // 3, half // 3]
    if sum(mrope_section) != half:
        raise ValueError(f"mrope_section {mrope_section} must add up to head_dim/2 = {half}")
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN_SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": num_kv_heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": float(rope_theta),
                "mrope_section": list(mrope_section),
            },
            "tie_word_embeddings": True,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden_size,
            "intermediate_size": 2 * vision_hidden_size,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "fullatt_block_indexes": [vision_depth - 1],
            "window_size": 112,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def build_tiny_model(
    output_dir: str | Path,
    seed: int = 0,
    bounds: ImageBounds = DEFAULT_BOUNDS,
    overwrite: bool = True,
    size: str = "tiny",
) -> Path:
    """Write a tiny Qwen2.5-VL model folder to ``output_dir`` and return its path.

    ``size``: a :data:`SIZES` preset. ``reader`` also starts the patch filters at zero mean, so a
    blank page embeds to (nearly) zero and the ink, not the background, drives the first features.

    Written to a temporary folder first and moved into place, so a crash never leaves a half model.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r}; known: {', '.join(SIZES)}")
    config = tiny_config(tokenizer, **SIZES[size])
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    if size != "tiny":
        with torch.no_grad():
            weight = model.model.visual.patch_embed.proj.weight
            weight -= weight.mean(dim=tuple(range(1, weight.dim())), keepdim=True)
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": bounds.min_pixels, "longest_edge": bounds.max_pixels}
    )

    with atomic_directory(output_dir, overwrite) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        save_processor_files(staging, tokenizer, image_processor, QWEN2_5_VL_CHAT_TEMPLATE)
        (staging / "README.md").write_text(
            "# tiny-qwen2.5-vl\n\nRandom-weight Qwen2.5-VL built offline by `python -m train.tiny_model` for "
            "tests and the demo. It has the real model's classes, tokenizer layout, chat template and "
            "image processor, at toy width; its outputs mean nothing.\n"
        )
    return Path(output_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output-dir", default="artifacts/tiny-qwen2.5-vl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny", help="width preset")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = build_tiny_model(args.output_dir, seed=args.seed, size=args.size)
    n = sum(1 for _ in path.iterdir())
    logger.info("tiny Qwen2.5-VL written to %s (%d files)", path, n)


if __name__ == "__main__":
    main()
