extension String {
    /// `self` without any `character`; `self` itself when it has none. Foundation's
    /// `replacingOccurrences` bridges through NSString: it was an eighth of a semantic lookup.
    func removing(_ character: Character) -> String {
        contains(character) ? String(filter { $0 != character }) : self
    }
}
