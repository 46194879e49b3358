// FinchTrain module
