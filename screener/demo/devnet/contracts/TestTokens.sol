// SPDX-License-Identifier: Apache-2.0
// Test-only tokens for the local devnet: the Transfer event and the issuer blacklist events have the same
// signatures and layouts as the real USDT (TetherToken), USD₮0 (WithBlockedList) and USDC (FiatToken) contracts,
// and MultiSigLike stores and logs proposals as Tether's MultiSigWallet does, so the scanner and the blacklist
// readers are exercised against the exact logs and call results they will meet on mainnet.
pragma solidity ^0.8.20;

abstract contract ERC20Base {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    address public owner;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "not owner");
        _;
    }

    // Tether's tokens are owned by its multisig: the devnet hands a token over the same way.
    function transferOwnership(address newOwner) external onlyOwner {
        owner = newOwner;
    }

    function _checkAllowed(address from, address to) internal view virtual;

    function _transfer(address from, address to, uint256 value) internal {
        _checkAllowed(from, to);
        require(balanceOf[from] >= value, "balance too low");
        unchecked {
            balanceOf[from] -= value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "allowance too low");
        if (allowed != type(uint256).max) {
            allowance[from][msg.sender] = allowed - value;
        }
        _transfer(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external onlyOwner {
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    // Mints `amountEach` to `count` consecutive addresses starting at `first`: a cheap way to put many real
    // Transfer logs (with real balance changes) on a devnet for benchmarks.
    function mintSeries(address first, uint256 count, uint256 amountEach) external onlyOwner {
        uint160 base = uint160(first);
        totalSupply += amountEach * count;
        for (uint256 i = 0; i < count; i++) {
            address to = address(base + uint160(i));
            balanceOf[to] += amountEach;
            emit Transfer(address(0), to, amountEach);
        }
    }
}

// USDT-like: TetherToken's BlackList interface (address of AddedBlackList is in data, not a topic).
contract TetherLike is ERC20Base {
    mapping(address => bool) public isBlackListed;

    event AddedBlackList(address _user);
    event RemovedBlackList(address _user);
    event DestroyedBlackFunds(address _blackListedUser, uint256 _balance);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Base(name_, symbol_, decimals_) {}

    function getBlackListStatus(address _maker) external view returns (bool) {
        return isBlackListed[_maker];
    }

    function addBlackList(address _evilUser) external onlyOwner {
        isBlackListed[_evilUser] = true;
        emit AddedBlackList(_evilUser);
    }

    function removeBlackList(address _clearedUser) external onlyOwner {
        isBlackListed[_clearedUser] = false;
        emit RemovedBlackList(_clearedUser);
    }

    function destroyBlackFunds(address _blackListedUser) external onlyOwner {
        require(isBlackListed[_blackListedUser], "not blacklisted");
        uint256 dirtyFunds = balanceOf[_blackListedUser];
        balanceOf[_blackListedUser] = 0;
        totalSupply -= dirtyFunds;
        emit DestroyedBlackFunds(_blackListedUser, dirtyFunds);
    }

    function _checkAllowed(address from, address) internal view override {
        require(!isBlackListed[from], "blacklisted");
    }
}

// USDC-like: FiatToken's Blacklistable interface (the account is an indexed topic).
contract FiatTokenLike is ERC20Base {
    address public blacklister;
    mapping(address => bool) internal blacklisted;

    event Blacklisted(address indexed _account);
    event UnBlacklisted(address indexed _account);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Base(name_, symbol_, decimals_) {
        blacklister = msg.sender;
    }

    function isBlacklisted(address _account) external view returns (bool) {
        return blacklisted[_account];
    }

    function blacklist(address _account) external {
        require(msg.sender == blacklister, "not blacklister");
        blacklisted[_account] = true;
        emit Blacklisted(_account);
    }

    function unBlacklist(address _account) external {
        require(msg.sender == blacklister, "not blacklister");
        blacklisted[_account] = false;
        emit UnBlacklisted(_account);
    }

    function _checkAllowed(address from, address to) internal view override {
        require(!blacklisted[from] && !blacklisted[to], "blacklisted");
    }
}

// USD₮0-like: WithBlockedList (every address indexed), as on Arbitrum, Polygon, Optimism's USDT0 and Avalanche USDt.
contract Usdt0Like is ERC20Base {
    mapping(address => bool) public isBlocked;

    event BlockPlaced(address indexed _user);
    event BlockReleased(address indexed _user);
    event DestroyedBlockedFunds(address indexed _blockedUser, uint256 _balance);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20Base(name_, symbol_, decimals_) {}

    function addToBlockedList(address _user) external onlyOwner {
        isBlocked[_user] = true;
        emit BlockPlaced(_user);
    }

    function removeFromBlockedList(address _user) external onlyOwner {
        isBlocked[_user] = false;
        emit BlockReleased(_user);
    }

    function destroyBlockedFunds(address _blockedUser) external onlyOwner {
        require(isBlocked[_blockedUser], "not blocked");
        uint256 funds = balanceOf[_blockedUser];
        balanceOf[_blockedUser] = 0;
        totalSupply -= funds;
        emit DestroyedBlockedFunds(_blockedUser, funds);
    }

    function _checkAllowed(address from, address) internal view override {
        require(!isBlocked[from], "blocked");
    }
}

// MultiSigWallet-like (Stefan George's, which owns USDT on Ethereum): a proposal is stored and logged as
// Submission(id); it runs when `required` owners have confirmed it.
contract MultiSigLike {
    struct Transaction {
        address destination;
        uint256 value;
        bytes data;
        bool executed;
    }

    mapping(uint256 => Transaction) public transactions;
    mapping(uint256 => mapping(address => bool)) public confirmations;
    mapping(address => bool) public isOwner;
    uint256 public required;
    uint256 public transactionCount;

    event Submission(uint256 indexed transactionId);
    event Confirmation(address indexed sender, uint256 indexed transactionId);
    event Execution(uint256 indexed transactionId);

    constructor(address[] memory owners_, uint256 required_) {
        for (uint256 i = 0; i < owners_.length; i++) {
            isOwner[owners_[i]] = true;
        }
        required = required_;
    }

    function submitTransaction(address destination, uint256 value, bytes memory data) external returns (uint256) {
        require(isOwner[msg.sender], "not owner");
        uint256 transactionId = transactionCount;
        transactions[transactionId] = Transaction(destination, value, data, false);
        transactionCount += 1;
        emit Submission(transactionId);
        confirmTransaction(transactionId);
        return transactionId;
    }

    function confirmTransaction(uint256 transactionId) public {
        require(isOwner[msg.sender] && !confirmations[transactionId][msg.sender], "not owner, or confirmed");
        confirmations[transactionId][msg.sender] = true;
        emit Confirmation(msg.sender, transactionId);
        confirmed[transactionId] += 1;
        Transaction storage txn = transactions[transactionId];
        if (!txn.executed && confirmed[transactionId] >= required) {
            txn.executed = true;
            (bool ok, ) = txn.destination.call{value: txn.value}(txn.data);
            require(ok, "execution failed");
            emit Execution(transactionId);
        }
    }

    mapping(uint256 => uint256) internal confirmed;
}

interface IERC20Minimal {
    function transfer(address to, uint256 value) external returns (bool);
}

// Holds tokens and sends them on request, so the token Transfer's `from` (this contract) differs from the
// transaction's initiator (the EOA calling forward) - the case where screening must look at both parties.
contract Forwarder {
    function forward(address token, address to, uint256 value) external {
        require(IERC20Minimal(token).transfer(to, value), "transfer failed");
    }
}
