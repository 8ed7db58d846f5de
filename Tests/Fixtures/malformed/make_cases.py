#!/usr/bin/env python3
"""Writes the malformed-input corpus beside this script: small broken files and cases.json, the
command each one is run through and the substrings its error must contain. Run it from anywhere;
MalformedInputsTests (Tests/RecipesTests) runs every case through the built rein binary."""
import json, os, struct, shutil

here = os.path.dirname(os.path.abspath(__file__))
cases = []

def write(rel, data):
    path = os.path.join(here, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)

def case(name, args, expect, base=None, absent=()):
    c = {"name": name, "args": args, "expect": expect}
    if base: c["base"] = base
    if absent: c["absent"] = list(absent)
    cases.append(c)

# --- safetensors, through rein convert (a model directory whose config is the tiny Llama's) ----
def st(header_bytes, data=b'', length=None):
    n = len(header_bytes) if length is None else length
    return struct.pack('<Q', n) + header_bytes + data

def st_case(name, content, expect):
    write(f"{name}/model.safetensors", content)
    case(name, ["convert", name, f"out-{name}"], [f"{name}/model.safetensors"] + expect,
         base={"dir": name, "from": "hf-tiny-llama", "files": ["config.json"]}, absent=[f"out-{name}"])

st_case("st-truncated", b'\x05\x00\x00', ["truncated", "8-byte header length"])
st_case("st-header-2-63", st(b'{}', length=1 << 63), ["header length 9223372036854775808", "100000000-byte limit"])
st_case("st-header-over-limit", st(b'{}', length=100_000_001), ["header length 100000001", "limit"])
st_case("st-header-past-file", st(b'{}', length=4096), ["header length 4096", "runs past the end"])
st_case("st-header-not-json", st(b'{"a": '), ["invalid header"])
st_case("st-header-array", st(b'[1, 2]'), ["invalid header", "JSON object"])
st_case("st-dtype-unknown", st(b'{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}', b'\0' * 4),
        ['tensor "w"', "dtype F99"])
st_case("st-shape-negative", st(b'{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', b'\0' * 4),
        ['tensor "w"', '"shape" must be a list of non-negative integers'])
st_case("st-shape-fraction", st(b'{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}', b'\0' * 4),
        ['tensor "w"', "[1.5]"])
st_case("st-offsets-reversed", st(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', b'\0' * 4),
        ['tensor "w"', "0 <= begin <= end"])
st_case("st-offsets-past-buffer", st(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b'\0' * 4),
        ['tensor "w"', "data_offsets [0, 16]", "4-byte data buffer"])
st_case("st-size-mismatch", st(b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b'\0' * 8),
        ['tensor "w"', "needs 12 bytes", "span 8"])
st_case("st-overlap", st(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                         b'"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b'\0' * 12),
        ['"a" and "b"', "overlapping"])
st_case("st-shape-overflow", st(b'{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}',
                                b'\0' * 4), ['tensor "w"', "too large"])
st_case("st-metadata-number", st(b'{"__metadata__":{"format":1}}'), ["__metadata__ must map strings to strings"])
st_case("st-deep-nesting", st(b'{"w":' + b'[' * 100_000), ["invalid header"])
st_case("st-missing-tensors", st(b'{"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}',
                                 b'\0' * 256), ["st-missing-tensors: missing 19 parameter(s)", "model.embed_tokens.weight"])
st_case("st-integer-weight", st(b'{"model.norm.weight":{"dtype":"I32","shape":[64],"data_offsets":[0,256]}}',
                                b'\0' * 256), ['tensor "model.norm.weight" is I32'])

# --- config.json, through rein generate (and convert) -----------------------------------------
tiny = json.load(open(os.path.join(here, "..", "hf-tiny-llama", "config.json")))

def cfg_case(name, change, expect, raw=None, command="generate"):
    if raw is None:
        c = dict(tiny); c.update(change)
        for k, v in change.items():
            if v is None: del c[k]
        raw = json.dumps(c, indent=1)
    write(f"{name}/config.json", raw)
    write(f"{name}/model.safetensors", st(b'{}'))
    if command == "generate":
        case(name, ["generate", "--model", name, "--prompt", "hi", "--max-new-tokens", "1"], [f"{name}/config.json"] + expect)
    else:
        case(name, ["convert", name, f"out-{name}"], [f"{name}/config.json"] + expect, absent=[f"out-{name}"])

cfg_case("cfg-not-json", {}, ["not valid JSON"], raw='{"model_type": "llama",')
cfg_case("cfg-array", {}, ["not a JSON object"], raw='[1, 2, 3]')
cfg_case("cfg-no-model-type", {"model_type": None}, ["missing key 'model_type'"])
cfg_case("cfg-model-type-bert", {"model_type": "bert"}, ["model_type 'bert' is not supported"])
cfg_case("cfg-layers-1e9", {"num_hidden_layers": 10 ** 9}, ["num_hidden_layers is 1000000000", "limit of 1024"])
cfg_case("cfg-layers-1e9-convert", {"num_hidden_layers": 10 ** 9}, ["num_hidden_layers is 1000000000"], command="convert")
cfg_case("cfg-vocab-2-40", {"vocab_size": 1 << 40}, ["'vocab_size'", "below 2^31"])
cfg_case("cfg-vocab-huge", {"vocab_size": 100_000_000}, ["vocab_size is 100000000", "limit"])
cfg_case("cfg-hidden-huge", {"hidden_size": 1 << 20}, ["hidden_size is 1048576", "limit"])
cfg_case("cfg-heads-zero", {"num_attention_heads": 0}, ["num_attention_heads is 0", "positive"])
cfg_case("cfg-hidden-string", {"hidden_size": "64"}, ["'hidden_size' should be an integer"])
cfg_case("cfg-layers-fraction", {"num_hidden_layers": 2.5}, ["'num_hidden_layers' should be an integer"])
cfg_case("cfg-layers-negative", {"num_hidden_layers": -2}, ["num_hidden_layers is -2", "positive"])
cfg_case("cfg-kv-heads", {"num_key_value_heads": 3}, ["num_attention_heads (4) must be a multiple of num_key_value_heads (3)"])
cfg_case("cfg-head-dim-odd", {"head_dim": 15}, ["head_dim 15 must be even"])
cfg_case("cfg-rope-scaling", {"rope_scaling": {"rope_type": "yarn", "factor": 4}}, ["'rope_scaling'", "not supported"])
cfg_case("cfg-act", {"hidden_act": "gelu"}, ["'hidden_act' should be 'silu'"])
cfg_case("cfg-bigger-than-weights", {"num_hidden_layers": 64, "hidden_size": 4096, "intermediate_size": 11008,
                                     "head_dim": 128, "num_attention_heads": 32, "num_key_value_heads": 32},
         ["parameters", "bytes of weights"])
cfg_case("cfg-deep-nesting", {}, ["not valid JSON"], raw='{"model_type": ' + '[' * 100_000)

# --- GGUF, through rein convert and rein tokenize ---------------------------------------------
def u32(v): return struct.pack('<I', v)
def u64(v): return struct.pack('<Q', v)
def gstr(s): b = s.encode() if isinstance(s, str) else s; return u64(len(b)) + b
def kv(key, t, value): return gstr(key) + u32(t) + value
def gguf(tensors=0, kvs=(), infos=b'', data=b'', version=3, count=None, align=32):
    body = b'GGUF' + u32(version) + u64(tensors) + u64(len(kvs) if count is None else count) + b''.join(kvs) + infos
    body += b'\0' * ((-len(body)) % align)
    return body + data

llama_kvs = [kv("general.architecture", 8, gstr("llama")), kv("llama.attention.head_count", 4, u32(4)),
             kv("llama.embedding_length", 4, u32(64)), kv("llama.block_count", 4, u32(2)),
             kv("llama.feed_forward_length", 4, u32(160)), kv("llama.context_length", 4, u32(128)),
             kv("llama.vocab_size", 4, u32(512))]

def tensor_info(name, dims, type_, offset):
    return gstr(name) + u32(len(dims)) + b''.join(u64(d) for d in dims) + u32(type_) + u64(offset)

def gguf_case(name, content, expect, command="convert"):
    write(f"{name}.gguf", content)
    if command == "convert":
        case(name, ["convert", f"{name}.gguf", f"out-{name}"], [f"{name}.gguf"] + expect, absent=[f"out-{name}"])
    else:
        case(name, ["tokenize", "--tokenizer", f"{name}.gguf", "hello"], [f"{name}.gguf"] + expect)

gguf_case("gguf-bad-magic", b'GGML' + b'\0' * 60, ["not a GGUF file"])
gguf_case("gguf-version", b'GGUF' + u32(7) + b'\0' * 32, ["GGUF version 7 is not supported"])
gguf_case("gguf-big-endian", b'GGUF' + struct.pack('>I', 3) + b'\0' * 32, ["big-endian"])
gguf_case("gguf-truncated", b'GGUF' + u32(3) + b'\0\0', ["the tensor count at byte 8", "runs past the end"])
gguf_case("gguf-tensor-count-2-40", gguf(tensors=1 << 40), ["the tensor count (1099511627776) at byte 8"])
gguf_case("gguf-kv-count-2-62", gguf(count=1 << 62), ["the metadata count (4611686018427387904) at byte 16"])
gguf_case("gguf-key-length", b'GGUF' + u32(3) + u64(0) + u64(1) + u64(1 << 62) + b'\0' * 16, ["the key of metadata entry 0", "at byte 24"])
gguf_case("gguf-string-length", gguf(kvs=[gstr("k") + u32(8) + u64(1 << 63)]), ['the value of "k"', "runs past the end"])
gguf_case("gguf-array-count", gguf(kvs=[gstr("k") + u32(9) + u32(4) + u64(1 << 61)]), ['the length of "k"', "runs past the end"])
gguf_case("gguf-array-of-arrays", gguf(kvs=[gstr("k") + u32(9) + u32(9) + u64(1 << 40)]), ['the length of "k"'])
gguf_case("gguf-value-type", gguf(kvs=[gstr("k") + u32(99) + u64(0)]), ['metadata "k"', "unknown value type 99"])
gguf_case("gguf-array-type", gguf(kvs=[gstr("k") + u32(9) + u32(77) + u64(0)]), ['metadata "k"', "unknown array element type 77"])
gguf_case("gguf-bool", gguf(kvs=[kv("flag", 7, b'\x02')]), ['metadata "flag"', "a bool must be 0 or 1, got 2"])
gguf_case("gguf-duplicate-key", gguf(kvs=[kv("a", 4, u32(1)), kv("a", 4, u32(2))]), ['metadata "a"', "appears twice"])
gguf_case("gguf-alignment", gguf(kvs=[kv("general.alignment", 4, u32(3))]), ['metadata "general.alignment"', "power of two"])
gguf_case("gguf-key-utf8", gguf(kvs=[gstr(b'\xff\xfe') + u32(4) + u32(1)]), ["the key of metadata entry 0", "not valid UTF-8"])
nested = u32(9) + u32(9)
for _ in range(20): nested += u64(1) + u32(9)
gguf_case("gguf-nested-arrays", gguf(kvs=[gstr("deep") + nested + u64(0)]), ['metadata "deep"', "nested deeper than 16"])
gguf_case("gguf-rank-5", gguf(tensors=1, infos=tensor_info("t", [1, 1, 1, 1, 1], 0, 0)), ['tensor "t"', "5 dimensions"])
gguf_case("gguf-dimension-huge", gguf(tensors=1, infos=tensor_info("t", [1 << 40, 1 << 40], 0, 0)), ['tensor "t"', "too large"])
gguf_case("gguf-tensor-past-end", gguf(tensors=1, infos=tensor_info("t", [64], 0, 0), data=b'\0' * 16),
          ['tensor "t"', "runs past the end"])
gguf_case("gguf-tensor-overlap", gguf(tensors=2, infos=tensor_info("a", [16], 0, 0) + tensor_info("b", [16], 0, 32),
                                      data=b'\0' * 128), ['"a" and "b" overlap'])
gguf_case("gguf-offset-unaligned", gguf(tensors=1, infos=tensor_info("t", [4], 0, 5), data=b'\0' * 64),
          ['tensor "t"', "not a multiple of the alignment 32"])
gguf_case("gguf-q8-row", gguf(tensors=1, infos=tensor_info("t", [33], 8, 0), data=b'\0' * 64), ['tensor "t"', "row length (ne0) is 33"])
gguf_case("gguf-duplicate-tensor", gguf(tensors=2, infos=tensor_info("t", [8], 0, 0) + tensor_info("t", [8], 0, 32),
                                        data=b'\0' * 64), ['tensor "t"', "appears twice"])
gguf_case("gguf-arch", gguf(kvs=[kv("general.architecture", 8, gstr("gpt2"))]), ["architecture 'gpt2' is not supported"])
gguf_case("gguf-no-arch", gguf(kvs=[kv("x", 4, u32(1))]), ['no metadata key "general.architecture"'])
gguf_case("gguf-arch-int", gguf(kvs=[kv("general.architecture", 4, u32(1))]), ['metadata "general.architecture" is', "expected a string"])
gguf_case("gguf-block-count-1e9", gguf(kvs=[k if not k.startswith(gstr("llama.block_count")) else kv("llama.block_count", 4, u32(10 ** 9))
                                             for k in llama_kvs]), ["llama.block_count is 1000000000"])
gguf_case("gguf-head-count-zero", gguf(kvs=[k if not k.startswith(gstr("llama.attention.head_count")) else kv("llama.attention.head_count", 4, u32(0))
                                             for k in llama_kvs]), ['"llama.attention.head_count" is 0'])
gguf_case("gguf-bigger-than-file", gguf(kvs=[kv("llama.embedding_length", 4, u32(8192)) if k.startswith(gstr("llama.embedding_length"))
                                              else kv("llama.attention.head_count", 4, u32(64)) if k.startswith(gstr("llama.attention.head_count"))
                                              else k for k in llama_kvs]), ["parameters", "more than the"])
gguf_case("gguf-tok-no-tokens", gguf(kvs=[kv("tokenizer.ggml.model", 8, gstr("gpt2"))]), ['no metadata key "tokenizer.ggml.tokens"'],
          command="tokenize")
gguf_case("gguf-tok-pre", gguf(kvs=[kv("tokenizer.ggml.pre", 8, gstr("qwen9"))]), ["tokenizer.ggml.pre 'qwen9' is not supported"],
          command="tokenize")
gguf_case("gguf-tok-tokens-ints", gguf(kvs=[gstr("tokenizer.ggml.tokens") + u32(9) + u32(4) + u64(1) + u32(5),
                                           gstr("tokenizer.ggml.merges") + u32(9) + u32(8) + u64(0)]),
          ['metadata "tokenizer.ggml.tokens" is an array of 1 uint32', "expected an array of strings"], command="tokenize")

# --- tokenizer.json and vocab.json + merges.txt, through rein tokenize --------------------------
def tok_case(name, text, expect, filename="tokenizer.json"):
    write(f"{name}.json", text)
    case(name, ["tokenize", "--tokenizer", f"{name}.json", "hello"], [f"{name}.json"] + expect)

def bpe(vocab, merges, extra=''):
    return ('{%s"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": %s, "merges": %s}}'
            % (extra, json.dumps(vocab), json.dumps(merges)))

tok_case("tok-not-json", '{"model": {"type": "BPE", "vocab": {', ["not valid JSON at line 1, column 37", "expected a string key"])
tok_case("tok-empty", '', ["empty"])
tok_case("tok-deep-nesting", '{"model": ' + '[' * 100_000, ["nesting deeper than 256"])
tok_case("tok-no-model", '{"version": "1.0"}', ["missing required field 'model'"])
tok_case("tok-model-type", '{"model": {"type": "Unigram", "vocab": []}}', ["Unigram"])
tok_case("tok-vocab-array", '{"model": {"type": "BPE", "vocab": [1, 2], "merges": []}}', ["model.vocab", "must be an object"])
tok_case("tok-vocab-negative", bpe({"a": -1}, []), ["model.vocab", "\"a\"", "0..<16777216"])
tok_case("tok-vocab-sparse", bpe({"a": 0, "b": 16777000}, []), ["model.vocab", "ids up to 16777000", "dense"])
tok_case("tok-vocab-duplicate-id", bpe({"a": 0, "b": 0}, []), ["model.vocab", "gives id 0 to both"])
tok_case("tok-merge-unknown", bpe({"a": 0, "b": 1}, ["a c"]), ["merge 1 needs the token \"c\"", "not in the vocabulary"])
tok_case("tok-merge-malformed", bpe({"a": 0, "b": 1}, ["abc"]), ["merge 1 is not two tokens separated by one space", "abc"])
tok_case("tok-added-no-id", bpe({"a": 0}, [], '"added_tokens": [{"content": "<x>"}], '), ["added_tokens[0].id"])
tok_case("tok-added-huge-id", bpe({"a": 0}, [], '"added_tokens": [{"id": 16777000, "content": "<x>", "special": true}], '),
         ["added_tokens", "16777000", "dense"])
tok_case("tok-utf8", b'{"model": {"type": "BPE", "vocab": {"\xff": 0}, "merges": []}}', ["UTF-8"])
write("tok-vocab-merges/vocab.json", '{"a": 0, "b": 1, "ab": 2}')
write("tok-vocab-merges/merges.txt", '#version: 0.2\na b\nb z\n')
case("tok-vocab-merges", ["tokenize", "--tokenizer", "tok-vocab-merges", "hello"], ["tok-vocab-merges/merges.txt", "\"z\""])

# --- JSONL datasets, through rein eval and rein train -----------------------------------------
def jsonl_case(name, text, args, expect):
    write(f"{name}.jsonl", text)
    case(name, [a.replace("{f}", f"{name}.jsonl") for a in args], [f"{name}.jsonl"] + expect,
         absent=[f"out-{name}"] if any("out-" in a for a in args) else ())

ppl = ["eval", "perplexity", "--model", "tiny", "--data", "{f}"]
em = ["eval", "exact-match", "--model", "tiny", "--data", "{f}"]
sft = ["train", "sft", "--model", "tiny", "--data", "{f}", "--output-dir", "out-{name}", "--max-steps", "1"]
jsonl_case("jsonl-bad-json", '{"text": "a"}\n{"text": "b"}\n{"text": \n', ppl, ["jsonl-bad-json.jsonl:3: not valid JSON at column 10"])
jsonl_case("jsonl-not-object", '{"text": "a"}\n[1, 2]\n', ppl, [":2: expected a JSON object with a \"text\" field"])
jsonl_case("jsonl-deep-nesting", '{"text": ' + '[' * 100_000 + '\n', ppl, [":1: not valid JSON", "nesting deeper than 256"])
jsonl_case("jsonl-utf8", b'{"text": "a"}\n{"text": "\xc3\x28"}\n', ppl, [":2: the line is not valid UTF-8"])
jsonl_case("jsonl-text-number", '{"text": 5}\n', ppl, [":1: the field \"text\" must be a string, found a number"])
jsonl_case("jsonl-em-no-answer", '{"prompt": "1+1="}\n', em, [":1: missing field 'answer' (expected a string)"])
sft_args = [a.replace("{name}", "jsonl-sft-prompt-number") for a in sft]
jsonl_case("jsonl-sft-prompt-number", '{"prompt": 5, "completion": "x"}\n', sft_args, [":1: field 'prompt' must be a string or a list of messages, found a number"])
sft_args = [a.replace("{name}", "jsonl-sft-mixed") for a in sft]
jsonl_case("jsonl-sft-mixed", '{"prompt": "a", "completion": "b"}\n{"text": "c"}\n', sft_args, [":2: missing field 'prompt'"])
sft_args = [a.replace("{name}", "jsonl-sft-messages") for a in sft]
jsonl_case("jsonl-sft-messages", '{"messages": [{"role": "user"}]}\n', sft_args, [":1: missing field 'messages[0].content' (expected a string)"])

# --- recipes, through rein check and rein run ------------------------------------------------
def recipe_case(name, text, expect, command="check"):
    write(f"{name}.yaml", text)
    args = ["check", f"{name}.yaml"] if command == "check" else ["run", f"{name}.yaml", "--quiet"]
    case(name, args, [f"{name}.yaml"] + expect, absent=["runs"] if command == "run" else ())

good_stage = "  - id: data\n    kind: data\n    task: arithmetic\n"
recipe_case("recipe-empty", "", ["a recipe must be a mapping with `name` and `stages`"])
recipe_case("recipe-not-mapping", "- a\n- b\n", [":1: a recipe must be a mapping"])
recipe_case("recipe-bad-yaml", "name: x\nstages:\n  - id: a\n   kind: data\n", ["not valid YAML: 4:4", "expected '-' indicator"])
recipe_case("recipe-tab", "name: x\nstages:\n\t- id: a\n", ["not valid YAML: 3:1", "cannot start any token"])
recipe_case("recipe-unknown-key", "name: x\nstagez: []\n", [":2: stagez: unknown key (did you mean 'stages'?)"])
recipe_case("recipe-unknown-kind", "name: x\nstages:\n  - id: a\n    kind: magic\n", [":4: stages.a.kind: unknown kind 'magic'"])
recipe_case("recipe-duplicate-id", "name: x\nstages:\n" + good_stage + good_stage, [":6: stages[1].id: duplicate stage id 'data'"])
recipe_case("recipe-deep-flow", "name: x\nstages: " + "[" * 100_000 + "\n", ["not valid YAML: 2:", "Maximum nesting level"])
recipe_case("recipe-deep-block", "name: x\nstages:\n  " + "- " * 50_000 + "x\n", ["not valid YAML: 3:", "Maximum nesting level"])
recipe_case("recipe-alias-bomb", "name: x\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)) + "stages: *j\n", ["stages[0]: a stage must be a mapping", ":2: a: unknown key"])
recipe_case("recipe-run-bad", "name: x\nstages:\n  - id: a\n    kind: sft\n    learning_rate: -1\n", [":5: stages.a.learning_rate: must be positive, got -1.0", "nothing was run"],
            command="run")
recipe_case("recipe-stage-cycle", "name: x\nstages:\n  - id: a\n    kind: sft\n    model: {from: stage:b}\n    data: stage:b/x.jsonl\n"
            "  - id: b\n    kind: sft\n    model: {from: stage:a}\n    data: stage:a/x.jsonl\n", [":5: stages.a.model: refers to a later stage 'stage:b'"])
recipe_case("recipe-utf8", b"name: \xff\xfe\nstages: []\n", [":1: not valid UTF-8 (byte 6 of the file)"])

# --- train with a fresh config ---------------------------------------------------------------
write("init-layers.json", '{"model_type": "gpt2", "n_layer": 1000000000, "n_embd": 32, "n_head": 2, "n_positions": 48}')
write("init-text.txt", "some text to pretrain on\n" * 20)
case("init-layers", ["train", "pretrain", "--init-config", "init-layers.json", "--tokenizer", "tiny", "--data", "init-text.txt",
                     "--output-dir", "out-init-layers", "--max-steps", "1"], ["model.init: cannot read the model config", "n_layer is 1000000000, above the limit of 1024"],
     absent=["out-init-layers"])

# Headers that parse but hold far fewer bytes than the config's parameters: the config is refused
# before the model is allocated.
for c in cases:
    if c["name"] in ("st-missing-tensors", "st-integer-weight"):
        c["expect"] = [f"{c['name']}/config.json", "the config describes 119104 parameters", "more than the 337 bytes of weights"]

with open(os.path.join(here, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
print(len(cases), "cases")
