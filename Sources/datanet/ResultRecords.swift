import DatanetAttribution
import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import Foundation

/// The model `--record` names: results are recorded only for a model record (not a bare
/// artifact id), so the record can say which model made them.
func recordingModel(_ held: HeldModel?, _ text: String) throws -> HeldModel {
    guard let held else {
        throw CLIError.usage("--record needs a model (its name or record id), not an artifact id: '\(terminalSafe(text))' names no model here")
    }
    return held
}

/// A credit list as a record holds it: inline up to `CreditList.inlineLimit` entries, else
/// stored as a blob here and named by id and count (schema/valuation.md "Records").
func storedCredits(_ ledger: Ledger, _ list: CreditList, name: String) throws -> Credits {
    guard list.entries.count > CreditList.inlineLimit else { return .inline(list) }
    let added = try storeBlob(ledger, list.encoded, named: name)
    return .blob(added.id, count: UInt64(list.entries.count))
}

/// Signs `body` of `kind` with this store's identity and keeps it here; returns the envelope.
func keepResult(_ ledger: Ledger, _ kind: RecordKind, _ body: (PublicKey) -> [UInt8]) throws -> Envelope {
    let me = try signer()
    var e = Envelope(kind: kind, body: body(me.publicKey))
    try e.sign(with: me.signingKey)
    try ledger.keep(result: e)
    return e
}

/// `infer --record`: an `attribution` record (method `knn`) of a prediction: the input's and
/// the label's SHA-256, and each contribution's share of the neighbours that carry the label,
/// in parts per 10^9 by largest remainder, ties to the earlier contribution (intake order).
func recordInference(_ model: HeldModel, contributions: [RecordID], credited: [Int], input: String, label: String, k: Int, features: String) throws -> Envelope {
    var counts = [Int: UInt64]()
    for c in credited { counts[c, default: 0] += 1 }
    let order = counts.keys.sorted()
    let shares = Weights.split(integers: order.map { counts[$0]! })
    let list = CreditList(zip(order, shares).map { (contributions[$0], Int64($1)) })
    let ledger = try openLedger()
    let credits = try storedCredits(ledger, list, name: "attribution")
    return try keepResult(ledger, .attribution) { key in
        AttributionRecord(datanet: model.record.datanet, signer: key, method: "knn", parameters: [("features", features), ("k", "\(k)")],
                          input: SHA256.hash(Array(input.utf8)), output: SHA256.hash(Array(label.utf8)), model: model.id,
                          credits: credits, createdAt: nowMillis()).body
    }
}

/// `value --record`: a `valuation` record (method `knn-shapley`) of every contribution's value
/// in units of 10^-12 (round half to even), in intake order, against the test file's SHA-256.
func recordValuation(_ model: HeldModel, contributions: [RecordID], values: [Double], test: [UInt8], tests: Int, k: Int) throws -> Envelope {
    var entries = [(contribution: RecordID, amount: Int64)]()
    for (id, v) in zip(contributions, values) {
        guard let fixed = ValuationRecord.fixedPoint(v) else { throw CLIError.failure("value \(v) of \(id.hex) does not fit the record's fixed point") }
        entries.append((id, fixed))
    }
    let ledger = try openLedger()
    let credits = try storedCredits(ledger, CreditList(entries), name: "valuation")
    return try keepResult(ledger, .valuation) { key in
        ValuationRecord(datanet: model.record.datanet, signer: key, model: model.id, method: "knn-shapley",
                        parameters: [("k", "\(k)"), ("test_examples", "\(tests)")], testSet: SHA256.hash(test), values: credits,
                        createdAt: nowMillis()).body
    }
}
