#!/usr/bin/env python3
"""Writes the seed corpora of scripts/fuzz.sh beside this script: one folder per target, small
valid files (and a few near-valid ones) for libFuzzer to start mutating from."""
import json, os, random, shutil, struct

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..")
rng = random.Random(14)

def write(rel, data):
    path = os.path.join(here, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)

# safetensors
def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data

def f32(n): return struct.pack(f"<{n}f", *[rng.uniform(-1, 1) for _ in range(n)])
write("safetensors/mixed.safetensors", safetensors([
    ("a.weight", "F32", [2, 3], f32(6)), ("b.weight", "F16", [4], struct.pack("<4e", 1, -2, 0.5, 3)),
    ("c.weight", "BF16", [2, 2], b"\x80\x3f\x00\x40\x00\xc0\x80\xbf"), ("ids", "I64", [3], struct.pack("<3q", 1, -5, 7)),
    ("mask", "I32", [2], struct.pack("<2i", 0, 1)), ("flags", "BOOL", [2], b"\x00\x01"), ("empty", "F32", [0], b""),
], {"format": "pt"}))
write("safetensors/one.safetensors", safetensors([("w", "F32", [4], f32(4))]))
write("safetensors/empty.safetensors", safetensors([]))

# GGUF: a complete one-layer Llama with a byte-level BPE tokenizer
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def gstr(s): b = s.encode(); return u64(len(b)) + b
def value(t, v):
    if t == 8: return gstr(v)
    if t == 4: return u32(v)
    if t == 6: return struct.pack("<f", v)
    if t == 7: return bytes([v])
    raise ValueError(t)
def array(t, vs): return u32(t) + u64(len(vs)) + b"".join(value(t, v) for v in vs)

tokens = ["<|endoftext|>", "a", "b", "c", "h", "e", "l", "o", "\u0120", "ab", "he", "ll", "lo", "\u0120h", "!", "1"]
merges = ["a b", "h e", "l l", "l o", "\u0120 h"]
C, V, F, H, KV, D = 32, len(tokens), 64, 2, 1, 16
meta = [
    ("general.architecture", 8, "llama"), ("general.alignment", 4, 32), ("llama.block_count", 4, 1),
    ("llama.context_length", 4, 16), ("llama.embedding_length", 4, C), ("llama.feed_forward_length", 4, F),
    ("llama.attention.head_count", 4, H), ("llama.attention.head_count_kv", 4, KV), ("llama.rope.dimension_count", 4, D),
    ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5), ("llama.rope.freq_base", 6, 10000.0), ("llama.vocab_size", 4, V),
    ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "smollm"), ("tokenizer.ggml.bos_token_id", 4, 0),
    ("tokenizer.ggml.eos_token_id", 4, 0), ("general.flag", 7, 1),
]
kvs = [gstr(k) + u32(t) + value(t, v) for k, t, v in meta]
kvs.append(gstr("tokenizer.ggml.tokens") + u32(9) + array(8, tokens))
kvs.append(gstr("tokenizer.ggml.merges") + u32(9) + array(8, merges))
kvs.append(gstr("tokenizer.ggml.token_type") + u32(9) + array(4, [3] + [1] * (V - 1)))

def q8(n):  # blocks of 32: f16 scale, 32 int8
    return b"".join(struct.pack("<e", 0.01) + bytes(rng.randrange(256) for _ in range(32)) for _ in range(n // 32))
def q4_0(n): return b"".join(struct.pack("<e", 0.02) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(n // 32))
def q4_1(n): return b"".join(struct.pack("<ee", 0.02, -0.1) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(n // 32))
def f16(n): return struct.pack(f"<{n}e", *[rng.uniform(-1, 1) for _ in range(n)])
tensors = [("token_embd.weight", [C, V], 8, q8), ("output_norm.weight", [C], 0, f32),
           ("blk.0.attn_norm.weight", [C], 0, f32), ("blk.0.ffn_norm.weight", [C], 1, f16),
           ("blk.0.attn_q.weight", [C, H * D], 2, q4_0), ("blk.0.attn_k.weight", [C, KV * D], 3, q4_1),
           ("blk.0.attn_v.weight", [C, KV * D], 8, q8), ("blk.0.attn_output.weight", [H * D, C], 0, f32),
           ("blk.0.ffn_gate.weight", [C, F], 2, q4_0), ("blk.0.ffn_up.weight", [C, F], 1, f16),
           ("blk.0.ffn_down.weight", [F, C], 8, q8)]
infos, blobs, offset = b"", [], 0
for name, dims, t, make in tensors:
    n = 1
    for d in dims: n *= d
    raw = make(n)
    infos += gstr(name) + u32(len(dims)) + b"".join(u64(d) for d in dims) + u32(t) + u64(offset)
    raw += b"\0" * ((-len(raw)) % 32)
    blobs.append(raw); offset += len(raw)
body = b"GGUF" + u32(3) + u64(len(tensors)) + u64(len(kvs)) + b"".join(kvs) + infos
body += b"\0" * ((-len(body)) % 32)
write("gguf/tiny-llama.gguf", body + b"".join(blobs))
meta_only = b"GGUF" + u32(3) + u64(0) + u64(len(kvs)) + b"".join(kvs)
write("gguf/tokenizer-only.gguf", meta_only)
nested = gstr("nested") + u32(9) + u32(9) + u64(2) + u32(4) + u64(2) + u32(1) + u32(2) + u32(8) + u64(1) + gstr("x")
write("gguf/metadata-types.gguf", b"GGUF" + u32(2) + u64(0) + u64(1) + nested)

# tokenizer.json
os.makedirs(os.path.join(here, "tokenizer"), exist_ok=True)
shutil.copy(os.path.join(fixtures, "hf-tiny-gpt2", "tokenizer.json"), os.path.join(here, "tokenizer", "gpt2-tiny.json"))
small = {"version": "1.0", "added_tokens": [{"id": 6, "content": "<|im_end|>", "special": True}],
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
         "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5}, "merges": ["h e", "l l"]}}
write("tokenizer/small.json", json.dumps(small))
small["model"]["merges"] = [["h", "e"], ["l", "l"]]
write("tokenizer/small-pair-merges.json", json.dumps(small))

# JSONL
write("jsonl/text.jsonl", '{"text": "The cat sat."}\n\n{"text": "Tu \\u00e9s \\ud83d\\ude00"}\n')
write("jsonl/prompt-completion.jsonl", '{"prompt": "2+2=", "completion": "4"}\n{"prompt": "a", "completion": "b", "extra": [1, {"x": null}]}\n')
write("jsonl/chat.jsonl", '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, '
      '{"role": "assistant", "content": "Hello"}]}\n')
write("jsonl/preference.jsonl", '{"prompt": "Q?", "chosen": "yes", "rejected": "no"}\n'
      '{"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], '
      '"rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "c"}]}\n')
write("jsonl/prompt-only.jsonl", '{"prompt": "Write a poem."}\n{"prompt": [{"role": "user", "content": "Hi"}]}\n')
write("jsonl/numbers.jsonl", '{"text": "x", "n": -1.5e300, "i": 123456789012345678901234567890, "b": true}\n')

# recipes
os.makedirs(os.path.join(here, "recipe"), exist_ok=True)
shutil.copy(os.path.join(here, "..", "..", "..", "recipes", "quickstart.yaml"), os.path.join(here, "recipe", "quickstart.yaml"))
write("recipe/tiny.yaml", """name: tiny
seed: 3
stages:
  - id: data
    kind: data
    task: arithmetic
    pretrain_examples: 300
  - id: tok
    kind: tokenizer
    data: stage:data/pretrain.txt
    vocab_size: 290
  - id: pre
    kind: pretrain
    model:
      init: {model_type: gpt2, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 48}
      tokenizer: stage:tok
    data: stage:data/pretrain.txt
    max_steps: 12
    learning_rate: 3.0e-3
  - id: sft
    kind: sft
    model: {from: stage:pre}
    data: stage:data/sft.jsonl
    lora: {r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}
    anchors: &a {batch_size: 4}
    other: *a
""")

# config.json
for name in ["hf-tiny-llama", "hf-tiny-gpt2"]:
    os.makedirs(os.path.join(here, "config"), exist_ok=True)
    shutil.copy(os.path.join(fixtures, name, "config.json"), os.path.join(here, "config", name + ".json"))
write("config/smollm2.json", json.dumps({
    "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
    "num_key_value_heads": 3, "intermediate_size": 1536, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
    "rope_theta": 100000, "tie_word_embeddings": True, "eos_token_id": [2, 3], "rope_scaling": None}))
write("config/gpt2-small.json", json.dumps({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12,
                                            "n_head": 12, "n_positions": 1024, "activation_function": "gelu_new"}))
print("seeds written")
