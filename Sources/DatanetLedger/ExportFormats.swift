import DatanetCrypto
import DatanetObjects
import DatanetRecords
import Foundation

/// The metadata ML tools read beside an export's files (schema/export.md "Layouts"):
/// Croissant 1.1 JSON-LD for `--format croissant`, a Hugging Face dataset card for `--format hf`.
enum ExportFormats {
    /// One file of an export, as both formats describe it.
    struct File {
        let path: String, size: UInt64, sha256: String, mediaType: String
        let contribution: ManifestEntry
    }

    /// Every file of the export (a folder contribution's files one by one), in manifest order.
    static func files(_ x: DatasetExport) -> [File] {
        x.entries.flatMap { e -> [File] in
            if let sha = e.sha256 { return [File(path: e.path, size: e.size, sha256: sha, mediaType: e.mediaType, contribution: e)] }
            return (e.files ?? []).map { f in
                File(path: e.path + "/" + f.path, size: f.size, sha256: f.sha256,
                     mediaType: MediaType.guess(fileName: String(f.path.split(separator: "/").last ?? ""), isFolder: false, sample: nil), contribution: e)
            }
        }
    }

    /// A table's columns, read from the exported file: a CSV header, or the keys of the first
    /// JSON Lines object; nil when the file is not such a table (or too large to read here).
    static func columns(_ f: File, dir: String) -> (format: String, columns: [String])? {
        let lower = f.path.lowercased()
        let csv = lower.hasSuffix(".csv") || f.mediaType == "text/csv"
        let jsonl = lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") || f.mediaType == "application/x-ndjson"
        guard csv || jsonl, f.size <= 64 << 20, let data = FileManager.default.contents(atPath: dir + "/" + f.path) else { return nil }
        if csv { return (try? CSVTable(Array(data))).map { ("text/csv", $0.header) } }
        guard let first = data.split(separator: 0x0a).first,
              let object = try? JSONSerialization.jsonObject(with: Data(first)) as? [String: Any], !object.isEmpty else { return nil }
        return ("application/jsonlines", object.keys.sorted())
    }

    /// An SPDX expression as Croissant's `license`: the SPDX page of a single identifier, the
    /// expression itself otherwise.
    static func licenseURL(_ spdx: String) -> String {
        spdx.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "+" } && spdx != "NOASSERTION"
            ? "https://spdx.org/licenses/\(spdx).html" : spdx
    }

    /// Croissant 1.1 metadata: the files as FileObjects with SHA-256, a RecordSet per CSV or
    /// JSON Lines file, licenses, contributor keys as creators, the checkpoint as version
    /// (`SIZE.0.0+ROOT`), and the Responsible-AI fields empty for the owner to fill.
    static func croissant(_ x: DatasetExport, dir: String) throws -> Data {
        let cp = try Checkpoint.unverified(note: x.checkpoint)
        let all = files(x)
        var distribution = [[String: Any]](), recordSets = [[String: Any]]()
        for f in all {
            distribution.append(["@type": "cr:FileObject", "@id": f.path, "name": f.path, "contentUrl": f.path,
                                 "contentSize": "\(f.size) B", "encodingFormat": f.mediaType, "sha256": f.sha256])
            guard let (format, columns) = columns(f, dir: dir) else { continue }
            distribution[distribution.count - 1]["encodingFormat"] = format
            let set = "records/" + f.path
            recordSets.append(["@type": "cr:RecordSet", "@id": set, "name": set,
                               "description": "the rows of \(f.path) (contribution \(f.contribution.contribution))",
                               "field": columns.map { c in
                                   ["@type": "cr:Field", "@id": set + "/" + c, "name": c, "dataType": "sc:Text",
                                    "source": ["fileObject": ["@id": f.path], "extract": ["column": c]]] as [String: Any]
                               }])
        }
        let authors = Array(Set(x.entries.map(\.author))).sorted()
        let doc: [String: Any] = [
            "@context": context, "@type": "sc:Dataset", "conformsTo": "http://mlcommons.org/croissant/1.1",
            "name": x.name,
            "description": "The contributions accepted in the Datanet \(x.datanet.hex) at its checkpoint of size \(cp.size) (root \(cp.root.hex)); the signed note is CHECKPOINT, every file is listed with its content id in MANIFEST.jsonl.",
            "url": "https://datanet.invalid/\(x.datanet.hex)",
            "version": "\(cp.size).0.0+\(cp.root.hex)",
            "datePublished": String(Date().formatted(.iso8601).prefix(10)),
            "citeAs": "@misc{datanet-\(x.datanet.hex.prefix(16)), title = {\(x.name.filter { $0 != "{" && $0 != "}" })}, note = {Datanet \(x.datanet.hex), checkpoint of size \(cp.size), root \(cp.root.hex)}}",
            "license": Array(Set(x.entries.map { licenseURL($0.license) })).sorted(),
            "creator": authors.map { ["@type": "sc:Person", "name": $0, "identifier": "ed25519:\($0)"] },
            "distribution": distribution, "recordSet": recordSets,
            // Responsible AI (Croissant RAI): left for the Datanet's owner to fill.
            "rai:dataCollection": "", "rai:dataBiases": "", "rai:dataLimitations": "", "rai:personalSensitiveInformation": "",
            "rai:dataUseCases": "", "rai:dataSocialImpact": "",
        ]
        return try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) + Data("\n".utf8)
    }

    /// The JSON-LD context of Croissant 1.1 (the one its reference implementation writes).
    static var context: [String: Any] { [
        "@language": "en", "@vocab": "https://schema.org/", "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs",
        "column": "cr:column", "conformsTo": "dct:conformsTo", "containedIn": "cr:containedIn", "cr": "http://mlcommons.org/croissant/",
        "rai": "http://mlcommons.org/croissant/RAI/", "data": ["@id": "cr:data", "@type": "@json"],
        "dataType": ["@id": "cr:dataType", "@type": "@vocab"], "dct": "http://purl.org/dc/terms/",
        "equivalentProperty": "cr:equivalentProperty", "examples": ["@id": "cr:examples", "@type": "@json"], "extract": "cr:extract",
        "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
        "format": "cr:format", "includes": "cr:includes", "isArray": "cr:isArray", "isLiveDataset": "cr:isLiveDataset",
        "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
        "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
        "replace": "cr:replace", "samplingRate": "cr:samplingRate", "sc": "https://schema.org/", "separator": "cr:separator",
        "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
    ] }

    /// A Hugging Face dataset card: YAML front matter whose `configs` list the files of each
    /// loadable group — CSV files sharing a header, JSON Lines files, plain text — as one
    /// `train` split each, then DATASET.md's text. `datasets` builds every config of a folder
    /// with one builder (inferred from the first config's files), so only the groups of the
    /// format with the most files become configs (the largest first: the default); files of
    /// other formats are named in the card's text.
    static func huggingFaceCard(_ x: DatasetExport, dir: String) throws -> String {
        var groups = [(format: String, name: String, paths: [String])]()
        var byKey = [String: Int]()
        func add(_ key: String, _ format: String, _ path: String) {
            if let i = byKey[key] { groups[i].paths.append(path) } else { byKey[key] = groups.count; groups.append((format, format, [path])) }
        }
        for f in files(x) {
            let lower = f.path.lowercased()
            if let (format, columns) = columns(f, dir: dir) {
                if format == "text/csv" { add("csv:" + columns.joined(separator: "\u{1F}"), "csv", f.path) } else { add("jsonl", "jsonl", f.path) }
            } else if f.mediaType.hasPrefix("text/") || lower.hasSuffix(".txt") || lower.hasSuffix(".md") {
                add("text", "text", f.path)
            }
        }
        var perFormat = [String: Int]()
        for g in groups { perFormat[g.format, default: 0] += g.paths.count }
        let chosen = perFormat.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key
        let loadable = groups.filter { $0.format == chosen }.sorted { $0.paths.count > $1.paths.count }
        var yaml = "---\npretty_name: \(yamlString(x.name))\n"
        let licenses = Set(x.entries.map(\.license))
        yaml += "license: " + (licenses.count == 1 && licenses.first!.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) && licenses.first! != "NOASSERTION"
                               ? licenses.first!.lowercased() : "other") + "\n"
        if !loadable.isEmpty { yaml += "configs:\n" }
        for (i, g) in loadable.enumerated() {
            yaml += "- config_name: \(i == 0 ? g.name : "\(g.name)-\(i + 1)")\n" + (i == 0 ? "  default: true\n" : "") + "  data_files:\n  - split: train\n    path:\n"
            for p in g.paths { yaml += "    - \(yamlString(globEscaped(p)))\n" }
        }
        var note = ""
        let others = perFormat.filter { $0.key != chosen }.sorted { $0.key < $1.key }
        if !others.isEmpty {
            note = "\n## Files `datasets` does not load here\n\n`datasets.load_dataset` reads one format per folder; the configs above are the \(chosen ?? "") files. "
                + "Also under `data/`: " + others.map { "\($0.value) \($0.key) file(s)" }.joined(separator: ", ")
                + " (MANIFEST.jsonl lists them; `datanet export --format croissant` describes every table).\n"
        }
        return yaml + "---\n\n" + Ledger.card(x) + note
    }

    /// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
    static func yamlString(_ s: String) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8), as: UTF8.self)
            .dropFirst().dropLast().description
    }

    /// A path as a glob matching only itself (`datasets` reads data_files as globs).
    static func globEscaped(_ path: String) -> String {
        var out = ""
        for c in path { out += c == "[" || c == "]" || c == "*" || c == "?" ? "[\(c)]" : String(c) }
        return out
    }
}
