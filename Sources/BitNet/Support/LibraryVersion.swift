/// The library's version (semantic versioning), reported by `bitnet --version`,
/// the C API's `bitnet_version()` and the pkg-config file.
public enum LibraryVersion {
    public static let string = "0.2.0"
}
