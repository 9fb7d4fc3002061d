"""Build a tiny random-weight Llama with a word-level tokenizer, saved like a real model.

Tests load it through the real loader, so every code path (template, streaming, stop) runs
on actual transformers objects, in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a an is are was be to of and in on for with you I we they it this that what how why "
    "hello hi yes no please thanks model user system assistant answer question story dragon "
    "cat dog red blue green one two three four five six seven eight nine ten code python file "
    "page document search find stop go run fast slow big small good bad new old time day night"
).split()
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def _tokenizer(extra_specials: tuple[str, ...] = ()):
    """A word-level tokenizer over WORDS; ``extra_specials`` (e.g. ``<image>``) come last."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS + list(".,!?:\n") + list(extra_specials))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Punctuation()])
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>", *extra_specials],
    )
    return tokenizer, vocab


def _text_config(vocab: dict):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"],
    )


def build_tiny_model(directory: Path, model_type: str = "llama", with_template: bool = False) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    tokenizer, vocab = _tokenizer()
    if with_template:
        tokenizer.chat_template = (
            "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}assistant:{% endif %}"
        )
    torch.manual_seed(0)
    model = LlamaForCausalLM(_text_config(vocab))
    # Never emit EOS/PAD on its own: tests control when generation ends.
    with torch.no_grad():
        model.lm_head.weight[vocab["<eos>"]] = -1.0
        model.lm_head.weight[vocab["<pad>"]] = -1.0
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# Content parts, as processors' templates take them: an image part becomes the image placeholder.
VLM_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}:{% if m['content'] is string %} {{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'image' %} <image>{% else %} {{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def build_tiny_vlm(directory: Path) -> Path:
    """A tiny random-weight LLaVA (CLIP vision tower, 16x16 pixels in 8x8 patches: 4 image tokens) with its
    processor (the PIL CLIP image processor: no torchvision) and chat template, saved like a real model."""
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    tokenizer, vocab = _tokenizer(("<image>",))
    tokenizer.chat_template = VLM_TEMPLATE
    images = CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(image_processor=images, tokenizer=tokenizer, patch_size=8, chat_template=VLM_TEMPLATE,
                               vision_feature_select_strategy="default", image_token="<image>",
                               num_additional_image_tokens=1)  # CLIP's class token, dropped by "default"
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=16, patch_size=8)
    config = LlavaConfig(vision_config=vision, text_config=_text_config(vocab), image_token_index=vocab["<image>"],
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    with torch.no_grad():  # as in build_tiny_model: tests decide when generation ends
        model.lm_head.weight[vocab["<eos>"]] = -1.0
        model.lm_head.weight[vocab["<pad>"]] = -1.0
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
