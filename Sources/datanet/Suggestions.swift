/// "Did you mean": the nearest known word to a mistyped one, and the datanet command for the
/// git words people type.

/// The version this build reports, with the formats it writes.
let versionText = "datanet 0.13 (records v1, log leaf kinds 1-7, receipts v2, bundles v1, Swift \(swiftVersion))"

#if swift(>=6.1)
let swiftVersion = "6.1+"
#else
let swiftVersion = "6.0"
#endif

/// What datanet calls the things git's (and DVC's) words do.
let gitWords: [String: String] = [
    "push": "`datanet bundle export D -o FILE` (peer sync comes with `datanet sync`)",
    "pull": "`datanet bundle import FILE`", "fetch": "`datanet bundle import FILE`", "clone": "`datanet bundle import FILE` into an empty store",
    "rm": "`datanet withdraw D ID`", "remove": "`datanet withdraw D ID`", "commit": "`datanet contribute D PATH...` then `datanet sequence D`",
    "remote": "`datanet peer add NAME HOST:PORT` (a contact with an address), `datanet id import FILE --name NAME` for contacts, `datanet pin` for anchors",
]

/// Edit distance with adjacent transpositions (optimal string alignment), for short words:
/// "stauts" is one step from "status".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in stride(from: 1, through: a.count, by: 1) {
        for j in stride(from: 1, through: b.count, by: 1) {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}

/// The closest of `candidates` to `word` within a third of its length (at least 1), if any.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= max(1, word.count / 3) }
    return scored.min { $0.1 < $1.1 }?.0
}

/// The hint to append to an unknown command's message ("" when none).
func commandHint(_ name: String) -> String {
    if let git = gitWords[name] { return "; in datanet that is \(git)" }
    return nearest(name, in: commands.map(\.spec.name)).map { "; did you mean `\($0)`?" } ?? ""
}
