#!/usr/bin/env bash
# Makes a short spoken M4A for trying Phonon by hand:
#   scripts/make-sample.sh [OUT.m4a] [TEXT]
set -euo pipefail
out=${1:-test_audio_file_1.m4a}
text=${2:-"Hello from Phonon. This is a short voice recording."}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -w "$tmp/speech.wav" "$text"
ffmpeg -loglevel error -y -i "$tmp/speech.wav" -c:a aac -b:a 64k \
  -movflags +faststart "$out"
echo "wrote $out"
