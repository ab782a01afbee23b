// Command keyvault serves the keyvault chaincode (channel "keys") as an
// external chaincode service. Configuration comes from the environment only
// here; see internal/ccserver for the variables.
package main

import (
	"fmt"
	"os"

	"github.com/synthreg/synthreg/chaincode/internal/ccserver"
	"github.com/synthreg/synthreg/chaincode/keyvault"
)

func main() {
	cc, err := keyvault.NewChaincode()
	if err == nil {
		err = ccserver.Run("keyvault", os.LookupEnv, cc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyvault:", err)
		os.Exit(1)
	}
}
