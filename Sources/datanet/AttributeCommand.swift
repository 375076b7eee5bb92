import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

/// `datanet attribute count D[@SIZE] TEXT` and `datanet attribute D[@SIZE] --text|--file`.
func runAttribute(_ p: Parsed) throws -> Int32 {
    let counting = p.positionals.first == "count"
    if counting {
        guard p.positionals.count == 3 else { throw CLIError.usage("attribute count takes DATANET[@SIZE] and TEXT") }
        guard p.options["--text"] == nil, p.options["--file"] == nil, p.options["--min-span"] == nil, !p.has("--record") else {
            throw CLIError.usage("attribute count takes its TEXT as an argument, and no --text, --file, --min-span or --record")
        }
    } else {
        guard p.positionals.count == 1 else { throw CLIError.usage("attribute takes one DATANET[@SIZE] (or `attribute count DATANET TEXT`)") }
    }
    let minimum = try p.options["--min-span"].map { text -> Int in
        guard let n = Int(text), n >= 1, n <= 1 << 20 else { throw CLIError.usage("--min-span takes 1 to 1048576 bytes, not '\(terminalSafe(text))'") }
        return n
    } ?? 20
    let text: [UInt8]
    if counting {
        text = p.rawPositionals[2]
        guard !text.isEmpty else { throw CLIError.usage("TEXT is empty: give the bytes to count") }
    } else {
        switch (p.options["--text"], p.options["--file"]) {
        case (let t?, nil): text = Array(t.utf8)
        case (nil, let f?): text = Array(try readInput(f, limit: 16 << 20))
        default: throw CLIError.usage("give the text with --text TEXT or --file F (one of them)")
        }
    }
    let ledger = try openLedger()
    let (st, size) = try datanetAt(ledger, p.positionals[counting ? 1 : 0])
    let quiet = p.has("--quiet") || p.has("--json")
    let (index, checkpoint, shards) = try withSpanLock {
        var indexes = SpanIndexes(ledger, st, quiet: quiet)
        let (index, checkpoint) = try indexes.index(at: size)
        return (index, checkpoint, indexes.manifest.shards.count)
    }
    let code = try counting ? printCount(p, st, checkpoint, index, text) : printAttribution(p, ledger, st, checkpoint, index, text, minimum)
    // Too many shards: merged now, after the answer is out.
    if shards > 8 { try withSpanLock { var indexes = SpanIndexes(ledger, st, quiet: true); try indexes.merge() } }
    return code
}

/// Text as JSON holds it: valid UTF-8 as it is; otherwise with U+FFFD for invalid bytes and
/// the exact bytes in base64 beside it.
func jsonText(_ bytes: some Collection<UInt8>, _ key: String, into o: inout [String: Any]) {
    let b = Array(bytes)
    if let s = String(validating: b, as: UTF8.self) { o[key] = s } else {
        o[key] = String(decoding: b, as: UTF8.self)
        o[key + "_base64"] = Data(b).base64EncodedString()
    }
}

func printCount(_ p: Parsed, _ st: DatanetState, _ checkpoint: UInt64, _ index: SpanIndex, _ pattern: [UInt8]) throws -> Int32 {
    var count = 0
    var perContribution = [UInt64: (id: RecordID, count: Int)]()
    var first = [SpanIndex.Location]() // the 50 smallest, sorted
    index.forEachOccurrence(pattern) { l in
        count += 1
        let c = index.contribution(l)
        perContribution[c.intake, default: (c.id, 0)].count += 1
        if first.count < 50 || l < first[first.count - 1] {
            first.insert(l, at: first.firstIndex(where: { l < $0 }) ?? first.count)
            if first.count > 50 { first.removeLast() }
        }
    }
    let contributions = perContribution.keys.sorted().map { perContribution[$0]! }
    func location(_ l: SpanIndex.Location) -> [String: Any] {
        let s = index.shards[l.shard]
        return ["contribution": index.contribution(l).id.hex, "file": s.path(l.document), "line": s.line(l.document), "offset": l.offset]
    }
    if p.has("--json") {
        var o: [String: Any] = ["datanet": st.id.hex, "checkpoint": checkpoint, "count": count, "documents": index.documentCount,
                                "contributions": contributions.map { ["contribution": $0.id.hex, "count": $0.count] as [String: Any] },
                                "locations": first.map(location)]
        jsonText(pattern, "text", into: &o)
        try printJSON(o)
        return 0
    }
    out("\(count) occurrence(s) in \(terminalSafe(st.policy.name)) at checkpoint \(checkpoint), in \(contributions.count) contribution(s) (\(index.documentCount) document(s) indexed)")
    for c in contributions { out("  \(c.id.hex.prefix(16))  \(c.count)") }
    if !first.isEmpty { out("first \(first.count) location(s):") }
    for l in first {
        let s = index.shards[l.shard]
        out("  \(index.contribution(l).id.hex.prefix(16))  \(terminalSafe(s.path(l.document)))" + (s.line(l.document) > 0 ? ":\(s.line(l.document))" : "") + "  byte \(l.offset)")
    }
    return 0
}

func printAttribution(_ p: Parsed, _ ledger: Ledger, _ st: DatanetState, _ checkpoint: UInt64, _ index: SpanIndex, _ text: [UInt8], _ minimum: Int) throws -> Int32 {
    let a = SpanAttribution(index, text: text, minimum: minimum)
    var record: Envelope?
    if p.has("--record") {
        let list = CreditList(a.weights.map { ($0.contribution.id, Int64($0.weight)) })
        let credits = try storedCredits(ledger, list, name: "attribution")
        record = try keepResult(ledger, .attribution) { key in
            AttributionRecord(datanet: st.id, signer: key, method: "spans", parameters: [("checkpoint", "\(checkpoint)"), ("min_span", "\(minimum)")],
                              input: SHA256.hash(text), output: a.outputDigest, model: nil, credits: credits, createdAt: nowMillis()).body
        }
    }
    if p.has("--json") {
        let spans: [[String: Any]] = a.spans.map { s in
            var o: [String: Any] = ["start": s.start, "end": s.end, "count": s.count, "documents": s.documents,
                                    "contributions": s.contributions.map(\.id.hex), "credited": s.credited?.id.hex ?? NSNull(),
                                    "score": s.score, "reason": s.reason?.rawValue ?? NSNull()]
            jsonText(text[s.start..<s.end], "text", into: &o)
            return o
        }
        try printJSON(["datanet": st.id.hex, "checkpoint": checkpoint, "documents": a.documentCount, "bytes": text.count, "min_span": minimum,
                       "spans": spans, "weights": a.weights.map { ["contribution": $0.contribution.id.hex, "score": $0.score, "weight": $0.weight] as [String: Any] },
                       "record": record?.id.hex ?? NSNull()] as [String: Any])
        return 0
    }
    out("\(a.spans.count) span(s) of at least \(minimum) bytes found in \(terminalSafe(st.policy.name)) at checkpoint \(checkpoint) (\(a.documentCount) document(s))")
    for s in a.spans {
        let quoted = String(decoding: text[s.start..<s.end], as: UTF8.self)
        let shown = quoted.count > 60 ? String(quoted.prefix(57)) + "…" : quoted
        out("  [\(s.start), \(s.end))  \"\(terminalSafe(shown))\"  \(s.count)× in \(s.documents) doc(s)  "
            + (s.credited.map { "→ \($0.id.hex.prefix(16)) score \(s.score)" } ?? "earns nothing: \(s.reason?.rawValue ?? "no contribution")"))
    }
    if a.weights.isEmpty { out("no contribution earns credit") }
    for w in a.weights { out("  \(w.contribution.id.hex.prefix(16))  weight \(w.weight) (score \(w.score))") }
    if let record { out("attribution record \(record.id.hex)") }
    return 0
}
