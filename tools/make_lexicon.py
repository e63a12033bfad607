#!/usr/bin/env python3
"""Compiles WordNet 3.0 (Debian's `wordnet-base`: /usr/share/wordnet) into the compact lexicon
the semantic verifier reads: Sources/SluiceDomain/Resources/lexicon.txt.

Kept: single-word lemmas (lower case, letters and inner hyphens), their senses in WordNet's
order (most frequent first), each synset's hypernyms (nouns, verbs) and similar-to links
(adjectives), word-level antonyms and derivations, and the irregular forms (`*.exc`). Dropped:
glosses, multi-word lemmas, every other pointer. Rerun after a WordNet update:

    apt-get install wordnet-base && python3 tools/make_lexicon.py

Format (one record per line, fields separated by one space):
    s <pos><hypernym-or-similar ids, comma-separated, or ->   synset number = line order among s lines
    w <lemma> <synset ids, comma-separated>                    senses of a lemma, all parts of speech
    a <lemma> <lemma>                                          antonyms
    d <lemma> <lemma>                                          derivationally related
    x <form> <lemma>                                           an irregular form
"""
import os
import re
import sys

WORDNET = os.environ.get("WORDNET_DIR", "/usr/share/wordnet")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "SluiceDomain", "Resources", "lexicon.txt")
WORD = re.compile(r"^[a-z]+(-[a-z]+)*$")
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}


def parse_data(pos_name):
    """Yields (offset, pos, [(lemma, word-number)], [(symbol, offset, pos, source, target)])."""
    with open(os.path.join(WORDNET, "data." + pos_name), encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split(" | ")[0].split()
            offset, pos = fields[0], fields[2]
            count = int(fields[3], 16)
            words = []
            i = 4
            for n in range(count):
                lemma = re.sub(r"\(.*\)$", "", fields[i]).lower()
                words.append((lemma, n + 1))
                i += 2
            pointers = []
            for _ in range(int(fields[i])):
                symbol, target, tpos, st = fields[i + 1:i + 5]
                pointers.append((symbol, target, "a" if tpos == "s" else tpos, int(st[:2], 16), int(st[2:], 16)))
                i += 4
            yield offset, "a" if pos == "s" else pos, words, pointers


def main():
    synsets = {}  # (pos, offset) -> index
    records = []  # (pos, words, pointers)
    for pos, name in POS_FILES.items():
        for offset, p, words, pointers in parse_data(name):
            synsets[(p, offset)] = len(records)
            records.append((p, words, pointers))
    senses = {}  # lemma -> [synset ids] in sense order (index files give the order)
    usage = {}  # lemma -> {pos: (senses tagged in SemCor, senses)}: which part of speech a word mostly is
    for pos, name in POS_FILES.items():
        with open(os.path.join(WORDNET, "index." + name), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                lemma = fields[0]
                if not WORD.match(lemma):
                    continue
                ptr_count = int(fields[3])
                offsets = fields[6 + ptr_count:]
                ids = [synsets[(pos, o)] for o in offsets if (pos, o) in synsets]
                senses.setdefault(lemma, []).extend(ids)
                usage.setdefault(lemma, {})[pos] = (int(fields[5 + ptr_count]), int(fields[4 + ptr_count]))
    antonyms, derivations = set(), set()
    lines = []
    for index, (pos, words, pointers) in enumerate(records):
        links = []
        for symbol, target, tpos, source, tword in pointers:
            tid = synsets.get((tpos, target))
            if tid is None:
                continue
            if symbol in ("@", "@i") or (symbol == "&" and pos == "a"):
                links.append(tid)
            elif symbol in ("!", "+") and source and tword:
                a = words[source - 1][0]
                b = records[tid][1][tword - 1][0]
                if WORD.match(a) and WORD.match(b) and a != b:
                    (antonyms if symbol == "!" else derivations).add(tuple(sorted((a, b))))
        lines.append(f"s {pos}{','.join(map(str, links)) or '-'}")
    for lemma in sorted(senses):
        by_pos = usage.get(lemma, {})
        main_pos = max(by_pos, key=lambda p: by_pos[p]) if by_pos else "n"
        lines.append(f"w {lemma} {','.join(map(str, senses[lemma]))} {main_pos}")
    lines += [f"a {a} {b}" for a, b in sorted(antonyms)]
    lines += [f"d {a} {b}" for a, b in sorted(derivations)]
    for name in POS_FILES.values():
        with open(os.path.join(WORDNET, name + ".exc"), encoding="latin-1") as f:
            for line in f:
                form, lemma = line.split()[:2]
                if WORD.match(form) and WORD.match(lemma) and form != lemma:
                    lines.append(f"x {form} {lemma}")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{OUT}: {len(records)} synsets, {len(senses)} lemmas, {len(antonyms)} antonym pairs, "
          f"{len(derivations)} derivation pairs, {os.path.getsize(OUT)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
