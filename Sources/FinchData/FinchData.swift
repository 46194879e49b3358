// FinchData module
