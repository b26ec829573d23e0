package discover

// DecodeCTForTest exposes the CT decoder to the external tests.
var DecodeCTForTest = decodeCT
