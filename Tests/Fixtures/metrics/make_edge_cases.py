"""Makes Tests/Fixtures/metrics/text_metrics_edge.json and porter_nltk.json.

Run with sacrebleu==2.6.0, rouge-score==0.1.2 and nltk installed:
    python make_edge_cases.py OUT_DIR VADER_LEXICON
"""
import collections, json, re, string, sys
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from nltk.stem import porter
from rouge_score import rouge_scorer

def normalize_answer(s):
    s = s.lower()
    s = ''.join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(re.compile(r'\b(a|an|the)\b', re.UNICODE), ' ', s)
    return ' '.join(s.split())

def tokens(s):
    return normalize_answer(s).split() if s else []

def squad_f1(gold, pred):
    g, p = tokens(gold), tokens(pred)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if not g or not p:
        return float(g == p)
    if same == 0:
        return 0.0
    pr, rc = same / len(p), same / len(g)
    return 2 * pr * rc / (pr + rc)

PAIRS = [
    ("&amp;lt;b&amp;gt; &quot;quoted&quot; A&B &lt;tag&gt;", "<b> \"quoted\" A&B <tag>"),
    ("<skipped> the rest is here", "the rest is here"),
    ("hyphen-\nated words\nand lines", "hyphenated words and lines"),
    ("trailing spaces   \t", "trailing spaces"),
    ("ends with dash-\n", "ends with dash"),
    ("1,000.50 3.14. 2-3 a-b 5- -5 .5 ,5 a.b a,b 1.a a.1 x.. y,, 9.9.9", "1,000.50 3.14 . 2 - 3 a-b"),
    ("naïve café résumé ÉCOLE", "naive cafe resume ecole"),
    ("İstanbul \u212aelvin straße ǅemal", "istanbul kelvin strasse dzemal"),
    ("e\u0301clair combining marks", "éclair combining marks"),
    ("thumbs 👍🏽 up 👨‍👩‍👧 family", "thumbs 👍 up family"),
    ("ＡＢＣ１２３ full width ٣ digits", "ABC123 full width 3 digits"),
    ("no\u00a0break\u2028line\u3000ideographic\x1cinfo\x1fsep", "no break line ideographic info sep"),
    ("tab\tseparated\vvertical\fform", "tab separated vertical form"),
    ("em—dash en–dash “curly” ‘single’ «guillemets»", "em-dash en-dash \"curly\" 'single' <<guillemets>>"),
    ("ﬁne ligature ŉ", "fine ligature n"),
    ("The a an the theater A-N an_apple The_end", "theater"),
    ("Ólafur the Great, an ÉCLAIR", "olafur great eclair"),
    ("the\u00a0end", "end"),
    ("", ""),
    ("only the hypothesis", ""),
    ("   ", "blank hypothesis"),
    ("a b c\n\nd e f\n  \ng h", "a b\nc d e\nf g h i"),
    ("line one\r\nline two\r\n", "line one\nline two"),
    ("the cat the cat the cat on the mat", "the cat on the mat the cat"),
    ("Generously running ponies flies dying relational conditional hopefulness.", "generous runs pony fly died relate condition hopeful"),
    ("The ACTIVATION of the controllable adjustments", "activate control adjust"),
    ("C++ & C# vs. Objective-C {braces} [brackets] (parens) @user #tag $5 ~tilde ^caret `tick` |pipe| \\slash/", "C++ and C# versus Objective-C"),
    ("It's 5 o'clock; don't you think?!", "It is five o'clock. Don't you think?"),
    ("x" * 3, "x x x"),
    ("word " * 30, "word " * 25),
    ("Σίσυφος ΟΔΟΣ Москва", "σίσυφος οδος москва"),
    ("日本語のテキスト", "日本語の文章"),
    ("tokyo-2020 covid-19 3-4-5", "tokyo 2020 covid 19"),
    ("U.S.A. e.g. i.e. Ph.D.", "USA eg ie PhD"),
]

def main():
    out, lexicon = sys.argv[1], sys.argv[2]
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    stemmed = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    tok = Tokenizer13a()
    cases = []
    for hyp, ref in PAIRS:
        c = {"hypothesis": hyp, "reference": ref,
             "sentence_bleu": sacrebleu.sentence_bleu(hyp, [ref]).score,
             "sentence_chrf": sacrebleu.sentence_chrf(hyp, [ref]).score,
             "tokenized_13a": tok(hyp),
             "squad_em": float(normalize_answer(ref) == normalize_answer(hyp)),
             "squad_f1": squad_f1(ref, hyp)}
        for name, scorer in (("", plain), ("_stem", stemmed)):
            for k, v in scorer.score(ref, hyp).items():
                c[k + name] = {"precision": v.precision, "recall": v.recall, "fmeasure": v.fmeasure}
        cases.append(c)
    hyps, refs = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    bleu = sacrebleu.metrics.BLEU()
    b = bleu.corpus_score(hyps, [refs])
    chrf = sacrebleu.metrics.CHRF()
    corpus_chrf = chrf.corpus_score(hyps, [refs]).score
    doc = {"made_with": {"sacrebleu": sacrebleu.__version__, "rouge_score": "0.1.2"},
           "bleu_signature": str(bleu.get_signature()),
           "chrf_signature": str(chrf.get_signature()),
           "corpus_bleu": {"score": b.score, "counts": b.counts, "totals": b.totals, "bp": b.bp,
                           "sys_len": b.sys_len, "ref_len": b.ref_len},
           "corpus_chrf": corpus_chrf,
           "notes": ["edge cases for the 13a tokenizer, Unicode, SQuAD normalization and ROUGE-Lsum lines"],
           "cases": cases}
    with open(f"{out}/text_metrics_edge.json", "w") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)

    words = set()
    for line in open(lexicon, encoding="utf-8"):
        w = line.split("\t")[0]
        if re.fullmatch(r"[a-z]+", w):
            words.add(w)
    classic = ["caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "bled", "motoring",
               "sing", "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed",
               "failing", "filing", "happy", "sky", "relational", "conditional", "rational", "valenci",
               "hesitanci", "digitizer", "conformabli", "radicalli", "differentli", "vileli", "analogousli",
               "vietnamization", "predication", "operator", "feudalism", "decisiveness", "hopefulness",
               "callousness", "formaliti", "sensitiviti", "sensibiliti", "triplicate", "formative", "formalize",
               "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance", "inference",
               "airliner", "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
               "dependent", "adoption", "homologou", "communism", "activate", "angulariti", "homologous",
               "effective", "bowdlerize", "probate", "rate", "cease", "controll", "roll", "dies", "flies",
               "spied", "died", "dying", "lying", "skies", "news", "innings", "proceed", "generously",
               "geology", "theology", "fully", "enjoy", "spy", "yyyy", "syzygy", "toy", "by", "is", "a",
               "generalization", "oscillators", "agreement", "abilities", "argument", "knightly", "ooed"]
    words.update(classic)
    nltk_mode = porter.PorterStemmer()
    original = porter.PorterStemmer(porter.PorterStemmer.ORIGINAL_ALGORITHM)
    # The classic words, every word whose two stems differ, and every fifth other lexicon word.
    table, others = [], 0
    for w in sorted(words):
        a, b = nltk_mode.stem(w), original.stem(w)
        if w not in classic and a == b:
            others += 1
            if others % 5:
                continue
        table.append([w, a, b])
    with open(f"{out}/porter_nltk.json", "w") as f:
        head = {"made_with": {"nltk": __import__("nltk").__version__},
                "notes": ["words: [word, PorterStemmer().stem(word) (NLTK_EXTENSIONS, what rouge-score uses), "
                          "PorterStemmer(ORIGINAL_ALGORITHM).stem(word)]"]}
        f.write(json.dumps(head)[:-1] + ', "words": [\n')
        f.write(",\n".join(json.dumps(row) for row in table))
        f.write("\n]}\n")

main()
