/// Comma-separated values as RFC 4180 writes them, read strictly: fields separated by commas,
/// records by CRLF or LF, a field in double quotes may hold commas, line breaks and `""` for a
/// quote; a quote inside an unquoted field, an unterminated quoted field, text after a closing
/// quote, invalid UTF-8 and a record whose field count differs from the header's are errors
/// naming the line. Used where a Datanet's tables are compared or read (diff, training sets).
public struct CSVTable: Sendable, Equatable {
    /// The first record.
    public let header: [String]
    /// Every later record, with the line it starts on (1-based; the header is line 1).
    public let rows: [(line: Int, fields: [String])]

    public static func == (a: CSVTable, b: CSVTable) -> Bool {
        a.header == b.header && a.rows.map(\.line) == b.rows.map(\.line) && a.rows.map(\.fields) == b.rows.map(\.fields)
    }

    /// Parses `bytes`; throws `.malformed("line N: …")` at the first problem.
    public init(_ bytes: [UInt8]) throws(RecordError) {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .malformed("CSV is not valid UTF-8") }
        var records = [(line: Int, fields: [String])]()
        var i = 0, line = 1
        let n = bytes.count
        while i < n {
            let start = line
            var fields = [String]()
            while true {
                var field = [UInt8]()
                if i < n && bytes[i] == 0x22 { // quoted
                    i += 1
                    while true {
                        guard i < n else { throw .malformed("line \(start): a quoted field is not closed") }
                        let b = bytes[i]
                        if b == 0x22 {
                            if i + 1 < n && bytes[i + 1] == 0x22 { field.append(0x22); i += 2; continue }
                            i += 1
                            break
                        }
                        if b == 0x0a { line += 1 }
                        field.append(b)
                        i += 1
                    }
                    guard i == n || bytes[i] == 0x2c || bytes[i] == 0x0a || (bytes[i] == 0x0d && i + 1 < n && bytes[i + 1] == 0x0a) else {
                        throw .malformed("line \(line): text after a closing quote")
                    }
                } else {
                    while i < n, bytes[i] != 0x2c, bytes[i] != 0x0a, !(bytes[i] == 0x0d && i + 1 < n && bytes[i + 1] == 0x0a) {
                        guard bytes[i] != 0x22 else { throw .malformed("line \(line): a quote inside an unquoted field") }
                        field.append(bytes[i])
                        i += 1
                    }
                }
                fields.append(String(decoding: field, as: UTF8.self))
                if i < n && bytes[i] == 0x2c { i += 1; continue }
                if i < n && bytes[i] == 0x0d { i += 1 }
                if i < n && bytes[i] == 0x0a { i += 1; line += 1 }
                break
            }
            records.append((start, fields))
        }
        guard let first = records.first else { throw .malformed("CSV has no header row") }
        for r in records.dropFirst() where r.fields.count != first.fields.count {
            throw .malformed("line \(r.line): \(r.fields.count) fields where the header has \(first.fields.count)")
        }
        header = first.fields
        rows = Array(records.dropFirst())
    }
}
