/// The summary tables people read: a header row underlined, the first column left-aligned and
/// the figures right-aligned, two spaces between columns. (Widths count Characters: "µs" is two.)
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { i in rows.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
        var out = ""
        for (n, row) in rows.enumerated() {
            out += row.indices.map { i in
                let pad = String(repeating: " ", count: max(0, widths[i] - row[i].count))
                return i == 0 ? row[i] + pad : pad + row[i]
            }.joined(separator: "  ")
            out += "\n"
            if n == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }
}
