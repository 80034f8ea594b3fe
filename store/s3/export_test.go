package s3

// SetCopyPartSize lowers the part size of multipart copies in Move, so
// tests reach that path without objects larger than 5 GiB.
func SetCopyPartSize(b *Backend, n int64) { b.copyPartSize = n }

// SetReadRanges sets the size of the ranged GETs of a large read (at most
// 8 MiB) and how many are in flight, so tests reach that path with small
// objects.
func SetReadRanges(b *Backend, size, ahead int) { b.readRangeSize, b.readAhead = size, ahead }
