// transformers' CLIPTokenizer (the tokenizers-backed one of transformers 5) from a diffusers `tokenizer/` folder
// holding vocab.json, merges.txt and tokenizer_config.json. Pipeline:
//   1. split the raw text on special tokens (bos, eos, unk, pad: each becomes its id wherever it appears);
//   2. each remaining segment: NFC, every whitespace run -> one space, per-character lower-casing;
//   3. CLIP's pre-tokenising regex ('s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+), whitespace dropped;
//   4. each piece as UTF-8 bytes mapped to printable characters (GPT-2's bytes_to_unicode), "</w>" on the last
//      symbol, BPE merges by rank;
//   5. [bos] + ids + [eos], truncated to model_max_length with eos kept, padded with the pad id.
import Foundation

public enum TokenizerError: Error, CustomStringConvertible {
    case missingFile(String)
    case badFile(String, String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): file not found (a CLIP tokenizer folder needs vocab.json and merges.txt)"
        case .badFile(let p, let why): return "\(p): \(why)"
        }
    }
}

public final class CLIPTokenizer {
    public let vocab: [String: Int]
    private let ranks: [Pair: Int]
    public let bosId: Int, eosId: Int, padId: Int
    public let maxLength: Int
    /// Special tokens, longest first so that a longer one wins where two start at the same place.
    private let specials: [(text: [Unicode.Scalar], id: Int)]
    private let byteToChar: [Character]
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable { let a: String, b: String }

    public convenience init(folder: String, padToken: String? = nil) throws {
        func path(_ n: String) -> String { (folder as NSString).appendingPathComponent(n) }
        let (vocab, merges) = try Self.readModel(folder: folder, path: path)
        var config: [String: Any] = [:]
        if let cdata = FileManager.default.contents(atPath: path("tokenizer_config.json")) {
            guard let c = (try? JSONSerialization.jsonObject(with: cdata)) as? [String: Any] else {
                throw TokenizerError.badFile(path("tokenizer_config.json"), "not a JSON object")
            }
            config = c
        }
        // Tokens may be plain strings or AddedToken objects {"content": ...}.
        func token(_ key: String, _ d: String) -> String {
            if let s = config[key] as? String { return s }
            if let o = config[key] as? [String: Any], let s = o["content"] as? String { return s }
            return d
        }
        let maxLen = (config["model_max_length"] as? NSNumber)?.intValue ?? 77
        try self.init(vocab: vocab, merges: merges, bos: token("bos_token", "<|startoftext|>"), eos: token("eos_token", "<|endoftext|>"),
                      unk: token("unk_token", "<|endoftext|>"), pad: padToken ?? token("pad_token", "<|endoftext|>"),
                      maxLength: maxLen > 10_000 ? 77 : maxLen)
    }

    /// vocab.json + merges.txt (the slow-tokenizer files every kandinsky-community folder has), or the BPE model
    /// inside tokenizer.json (folders saved by transformers 5 alone).
    static func readModel(folder: String, path: (String) -> String) throws -> ([String: Int], [(String, String)]) {
        let fm = FileManager.default
        if !fm.fileExists(atPath: path("vocab.json")), let tdata = fm.contents(atPath: path("tokenizer.json")) {
            guard let t = (try? JSONSerialization.jsonObject(with: tdata)) as? [String: Any], let model = t["model"] as? [String: Any],
                  model["type"] as? String == "BPE", let vocab = model["vocab"] as? [String: Int], let rawMerges = model["merges"] as? [Any] else {
                throw TokenizerError.badFile(path("tokenizer.json"), "no BPE model with vocab and merges")
            }
            let merges = try rawMerges.map { m -> (String, String) in
                if let s = m as? String, case let p = s.split(separator: " "), p.count == 2 { return (String(p[0]), String(p[1])) }
                if let a = m as? [String], a.count == 2 { return (a[0], a[1]) }
                throw TokenizerError.badFile(path("tokenizer.json"), "merge \(m) is not a pair")
            }
            return (vocab, merges)
        }
        guard let vdata = fm.contents(atPath: path("vocab.json")) else { throw TokenizerError.missingFile(path("vocab.json")) }
        guard let vocab = (try? JSONSerialization.jsonObject(with: vdata)) as? [String: Int] else {
            throw TokenizerError.badFile(path("vocab.json"), "not a JSON object of token -> id")
        }
        guard let mdata = fm.contents(atPath: path("merges.txt")), let mtext = String(data: mdata, encoding: .utf8) else {
            throw TokenizerError.missingFile(path("merges.txt"))
        }
        var merges: [(String, String)] = []
        for line in mtext.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { throw TokenizerError.badFile(path("merges.txt"), "line '\(line)' is not a pair") }
            merges.append((String(parts[0]), String(parts[1])))
        }
        return (vocab, merges)
    }

    public init(vocab: [String: Int], merges: [(String, String)], bos: String, eos: String, unk: String, pad: String, maxLength: Int) throws {
        self.vocab = vocab
        var r: [Pair: Int] = [:]
        for (i, m) in merges.enumerated() where r[Pair(a: m.0, b: m.1)] == nil { r[Pair(a: m.0, b: m.1)] = i }
        ranks = r
        func id(_ t: String) throws -> Int {
            guard let i = vocab[t] else { throw TokenizerError.badFile("vocab.json", "special token '\(t)' is not in the vocabulary") }
            return i
        }
        bosId = try id(bos)
        eosId = try id(eos)
        padId = try id(pad)
        self.maxLength = maxLength
        var sp: [(text: [Unicode.Scalar], id: Int)] = []
        for t in Set([bos, eos, unk, pad]) { sp.append((Array(t.unicodeScalars), try id(t))) }
        specials = sp.sorted { $0.text.count > $1.text.count }
        byteToChar = Self.bytesToUnicode()
    }

    /// GPT-2's reversible map from bytes to printable characters.
    static func bytesToUnicode() -> [Character] {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            chars.append(256 + n)
            n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }

    /// Token ids of `text` without bos/eos, padding or truncation.
    public func tokenize(_ text: String) -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        var segmentStart = 0, i = 0
        while i < scalars.count {
            if let sp = specials.first(where: { matches($0.text, scalars, at: i) }) {
                ids += tokenizeSegment(String(String.UnicodeScalarView(scalars[segmentStart..<i])))
                ids.append(sp.id)
                i += sp.text.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        ids += tokenizeSegment(String(String.UnicodeScalarView(scalars[segmentStart..<scalars.count])))
        return ids
    }

    private func matches(_ needle: [Unicode.Scalar], _ hay: [Unicode.Scalar], at i: Int) -> Bool {
        guard i + needle.count <= hay.count else { return false }
        for k in 0..<needle.count where hay[i + k] != needle[k] { return false }
        return true
    }

    /// The 77 ids and the attention mask (1 for real tokens) that `tokenizer(text, padding="max_length",
    /// truncation=True)` returns.
    public func encode(_ text: String) -> (ids: [Int], mask: [Int]) {
        var body = tokenize(text)
        if body.count > maxLength - 2 { body = Array(body.prefix(maxLength - 2)) }
        let ids = [bosId] + body + [eosId]
        let pad = maxLength - ids.count
        return (ids + Array(repeating: padId, count: pad), Array(repeating: 1, count: ids.count) + Array(repeating: 0, count: pad))
    }

    // MARK: - Normalisation and pre-tokenisation

    static func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var inSpace = false
        for s in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            if s.properties.isWhitespace {
                if !inSpace { out.append(" ") }
                inSpace = true
                continue
            }
            inSpace = false
            // Per-character full lower-case mapping, without context rules (as Rust's char::to_lowercase).
            out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
        }
        return String(out)
    }

    enum Kind { case letter, number, space, other }
    static func kind(_ s: Unicode.Scalar) -> Kind {
        if s.properties.isWhitespace { return .space }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    static func pieces(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        var i = 0
        func emit(_ a: Int, _ b: Int) { out.append(String(String.UnicodeScalarView(s[a..<b]))) }
        while i < s.count {
            if let c = contractions.first(where: { c in i + c.count <= s.count && (0..<c.count).allSatisfy { s[i + $0] == c[$0] } }) {
                emit(i, i + c.count); i += c.count; continue
            }
            switch kind(s[i]) {
            case .space: i += 1
            case .number: emit(i, i + 1); i += 1
            case .letter:
                var j = i + 1
                while j < s.count && kind(s[j]) == .letter { j += 1 }
                emit(i, j); i = j
            case .other:
                var j = i + 1
                while j < s.count && kind(s[j]) == .other { j += 1 }
                emit(i, j); i = j
            }
        }
        return out
    }

    private func tokenizeSegment(_ segment: String) -> [Int] {
        if segment.isEmpty { return [] }
        var ids: [Int] = []
        for piece in Self.pieces(Self.normalize(segment)) { ids += bpe(piece) }
        return ids
    }

    // MARK: - BPE

    private func bpe(_ piece: String) -> [Int] {
        lock.lock()
        if let hit = cache[piece] { lock.unlock(); return hit }
        lock.unlock()
        var word = piece.utf8.map { String(byteToChar[Int($0)]) }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best: (rank: Int, at: Int)?
            for k in 0..<(word.count - 1) {
                if let r = ranks[Pair(a: word[k], b: word[k + 1])], r < (best?.rank ?? Int.max) { best = (r, k) }
            }
            guard let b = best else { break }
            let first = word[b.at], second = word[b.at + 1]
            // Merge every occurrence of the pair, left to right, as the reference BPE does.
            var merged: [String] = []
            var k = 0
            while k < word.count {
                if k < word.count - 1 && word[k] == first && word[k + 1] == second {
                    merged.append(first + second); k += 2
                } else {
                    merged.append(word[k]); k += 1
                }
            }
            word = merged
        }
        // Every symbol exists in a CLIP vocabulary (all bytes, with and without </w>); unk covers foreign files.
        let unk = vocab["<|endoftext|>"] ?? eosId
        let ids = word.map { vocab[$0] ?? unk }
        lock.lock(); cache[piece] = ids; lock.unlock()
        return ids
    }
}
