// SPDX-License-Identifier: Apache-2.0
// A devnet stand-in for a Tornado Cash pool: fixed-denomination ETH deposits and withdrawals that pay a
// recipient and emit Tornado's exact events, so the screener's mixer index decodes it like mainnet pools.
// There is no zk proof: anyone may withdraw any unspent nullifier. Never deploy this outside a devnet.
pragma solidity ^0.8.20;

contract MixerPool {
    uint256 public immutable denomination;
    uint32 public nextIndex;
    mapping(bytes32 => bool) public nullifierHashes;
    mapping(bytes32 => bool) public commitments;

    // Same signatures and indexing as tornado-core's Tornado.sol: only `relayer` is indexed in Withdrawal.
    event Deposit(bytes32 indexed commitment, uint32 leafIndex, uint256 timestamp);
    event Withdrawal(address to, bytes32 nullifierHash, address indexed relayer, uint256 fee);

    constructor(uint256 _denomination) {
        require(_denomination > 0, "denomination should be greater than 0");
        denomination = _denomination;
    }

    function deposit(bytes32 _commitment) external payable {
        require(!commitments[_commitment], "The commitment has been submitted");
        require(msg.value == denomination, "Please send `mixDenomination` ETH along with transaction");
        commitments[_commitment] = true;
        uint32 index = nextIndex;
        nextIndex = index + 1;
        emit Deposit(_commitment, index, block.timestamp);
    }

    function withdraw(address payable _recipient, bytes32 _nullifierHash, address payable _relayer, uint256 _fee)
        external
    {
        require(_fee <= denomination, "Fee exceeds transfer value");
        require(!nullifierHashes[_nullifierHash], "The note has been already spent");
        require(address(this).balance >= denomination, "Pool has no funds for a withdrawal");
        nullifierHashes[_nullifierHash] = true;
        (bool ok, ) = _recipient.call{value: denomination - _fee}("");
        require(ok, "payment to _recipient did not go thru");
        if (_fee > 0) {
            (ok, ) = _relayer.call{value: _fee}("");
            require(ok, "payment to _relayer did not go thru");
        }
        emit Withdrawal(_recipient, _nullifierHash, _relayer, _fee);
    }
}
