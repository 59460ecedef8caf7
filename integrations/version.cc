// Placeholder translation unit so the library exists before the first integration lands.
namespace tracepager::integrations {
int LibraryAnchor() { return 0; }
}  // namespace tracepager::integrations
