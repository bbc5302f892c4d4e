// Package testpb is the generated code of catalog.proto, a small service
// whose messages (maps, nested messages, a oneof, bytes, a timestamp) the
// grpccache tests send through real gRPC servers.
//
// The generated files are committed, so building and testing need no protoc.
// To regenerate them, install protoc (Debian: apt-get install
// protobuf-compiler; 3.21.12 was used), protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.2:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./contrib/grpc/internal/testpb
//
// protoc runs from the module root so that the file registers as
// contrib/grpc/internal/testpb/catalog.proto, a name no other package
// claims in the protobuf registry.
package testpb

//go:generate protoc -I ../../../.. --go_out=../../../.. --go_opt=paths=source_relative --go-grpc_out=../../../.. --go-grpc_opt=paths=source_relative contrib/grpc/internal/testpb/catalog.proto
