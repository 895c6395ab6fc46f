package mapping

// DecodeFast is decodeFast, for the tests that hold it to encoding/json.
func DecodeFast(data []byte, r *Result) bool { return decodeFast(data, r, nil) }

// DecodeFastSlab is decodeFast cutting step arrays from slab, as Decode
// does once Decodeds are recycled.
func DecodeFastSlab(data []byte, r *Result, slab *[]Step) bool { return decodeFast(data, r, slab) }

// DecodeStd is Decode with encoding/json alone, the reference.
func DecodeStd(m *Mapper, data []byte, src Source) (*Decoded, error) {
	return m.decode(data, src, false)
}

// WithoutSlab returns a copy of d without the slab its step arrays were
// cut from, for comparing what two decodings made.
func WithoutSlab(d *Decoded) *Decoded {
	c := *d
	c.steps = nil
	return &c
}
