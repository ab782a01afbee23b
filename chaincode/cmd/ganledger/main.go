// Command ganledger serves the ganledger chaincode (channel "gan") as an
// external chaincode service. Configuration comes from the environment only
// here; see internal/ccserver for the variables.
package main

import (
	"fmt"
	"os"

	"github.com/synthreg/synthreg/chaincode/ganledger"
	"github.com/synthreg/synthreg/chaincode/internal/ccserver"
)

func main() {
	cc, err := ganledger.NewChaincode()
	if err == nil {
		err = ccserver.Run("ganledger", os.LookupEnv, cc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ganledger:", err)
		os.Exit(1)
	}
}
